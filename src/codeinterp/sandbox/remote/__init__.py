"""Sandboxes on other machines, over HTTP. Its parts, by job:

    wire.py      the routes and JSON shapes both ends share
    host.py      `codeinterp sandbox-host`: this machine's bubblewrap backend served over HTTP
    session.py   the `remote` backend's session: one session on one host
    backend.py   the `remote` backend: hosts, their health and load, where a new session goes
"""

"""`codeinterp serve` as a process: graceful SIGTERM, idle connections, keys CLI against its data."""

import http.client
import signal
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import make_client
from tests.helpers.server import start_server


def test_sigterm_finishes_an_upload_in_flight(tmp_path):
    proc = start_server(tmp_path)
    try:
        started = threading.Event()
        result = {}

        def slow_body():
            yield (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
                   b'--B\r\nContent-Disposition: form-data; name="file"; filename="late.txt"\r\n\r\n')
            for n in range(15):
                yield b"L" * 10_000
                started.set()
                time.sleep(0.1)
            yield b"\r\n--B--\r\n"

        def post():
            r = httpx.post(proc.base_url + "/files", content=slow_body(), timeout=60,
                           headers={"Authorization": f"Bearer {proc.api_key}",
                                    "Content-Type": "multipart/form-data; boundary=B"})
            result["status"], result["body"] = r.status_code, r.json()

        uploader = threading.Thread(target=post)
        uploader.start()
        assert started.wait(30)
        proc.proc.send_signal(signal.SIGTERM)
        uploader.join(60)
        assert proc.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutting down
        assert result["status"] == 200 and result["body"]["bytes"] == 150_000
        assert "Application shutdown complete" in proc.log()

        proc.start()
        with make_client(proc) as client:
            assert client.files.content(result["body"]["id"]).read() == b"L" * 150_000
    finally:
        proc.stop()


def test_keys_cli_create_list_revoke(tmp_path):
    proc = start_server(tmp_path)
    try:
        key = proc.create_key("team-a")
        assert key.startswith("sk-ci-")
        listing = proc.run_cli("keys", "list").stdout
        line = next(row for row in listing.splitlines() if "team-a" in row)
        assert key not in listing and key[:12] in line and "active" in line
        with make_client(proc, key) as client:
            created = client.files.create(file=("a.txt", b"a"), purpose="assistants")
            assert [f.id for f in client.files.list()] == [created.id]
        with make_client(proc) as default_client:
            assert created.id not in [f.id for f in default_client.files.list()]
        key_id = line.split()[0]
        assert "Revoked" in proc.run_cli("keys", "revoke", key_id).stdout
        assert "revoked" in proc.run_cli("keys", "list").stdout
        r = httpx.get(proc.base_url + "/files", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401
    finally:
        proc.stop()


@pytest.mark.slow
def test_an_idle_connection_stays_open_longer_than_clients_keep_one(tmp_path):
    """httpx (so the openai SDK) reuses a connection up to 5 s after its last answer. Were the server
    to close idle connections as soon, a request could be sent on one just as it closes (the client
    gets `Connection reset by peer`)."""
    proc = start_server(tmp_path)
    try:
        url = urlsplit(proc.base_url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        assert first.status == 200 and first.read()
        socket_used = connection.sock
        time.sleep(6)
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        assert second.status == 200 and second.read() and connection.sock is socket_used
        connection.close()
    finally:
        proc.stop()

"""The `remote` backend and `codeinterp sandbox-host` beyond the interface's contract (which
tests/sandbox/test_interface.py checks on every backend): the shared secret, bounded requests,
sessions spread over hosts, a host's loss and restart, and mTLS. Real host processes on loopback."""

import ssl
import subprocess

import httpx
import pytest

from codeinterp.sandbox.interface import read_all
from codeinterp.sandbox.remote import wire
from codeinterp.sandbox.types import FileTooLarge, SandboxError, SessionClosed
from tests.helpers.sandbox_hosts import SECRET, SandboxHostProcess, remote_settings, start_hosts
from tests.helpers.server import CLI
from tests.sandbox.conftest import SandboxHarness

HOST_ENV = {"CODEINTERP_SANDBOX_FILE_SIZE_MB": "1", "CODEINTERP_SANDBOX_INTERRUPT_GRACE_SECONDS": "2"}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    hosts = start_hosts(tmp_path_factory, env=HOST_ENV)
    yield hosts
    for host in hosts:
        host.stop()


@pytest.fixture(scope="module")
def remote(hosts, tmp_path_factory):
    harness = SandboxHarness(tmp_path_factory.mktemp("remote"), sandbox_warm_sessions=0, **remote_settings(hosts))
    yield harness
    harness.close()


def test_every_route_refuses_a_missing_or_wrong_secret(hosts):
    host = hosts[0]
    routes = [("GET", "/health"), ("POST", "/sessions"), ("DELETE", "/sessions/x"), ("POST", "/sessions/x/execute"),
              ("POST", "/sessions/x/interrupt"), ("GET", "/sessions/x/files"), ("PUT", "/sessions/x/file?path=a"),
              ("GET", "/sessions/x/file?path=a"), ("GET", "/anything")]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {SECRET}x"},
                    {"Authorization": SECRET}):
        for method, path in routes:
            answer = httpx.request(method, host.url + path, headers=headers, content=b"{}")
            assert answer.status_code == 401 and answer.json()["error"] == "unauthorized", (method, path, headers)
    assert host.health()["host_id"]


def test_a_host_refuses_to_start_without_a_secret(tmp_path):
    host = SandboxHostProcess(tmp_path, {"CODEINTERP_SANDBOX_HOST_SECRET": ""})
    done = subprocess.run([str(CLI), "sandbox-host", "--listen", f"127.0.0.1:{host.port}"], env=host.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "CODEINTERP_SANDBOX_HOST_SECRET" in done.stderr


def test_request_bodies_are_bounded(remote, hosts):
    session = remote.session()
    auth = {"Authorization": f"Bearer {SECRET}"}
    url = f"{session.host.url}/sessions/{session.id}"
    too_long = httpx.post(url + "/execute", headers=auth, content=b" " * (wire.MAX_JSON_BYTES + 1))
    assert too_long.status_code == 400 and too_long.json()["error"] == "bad_request"
    declared = httpx.put(url + "/file", params={"path": "big.bin"}, headers=auth, content=b"x" * (1024 * 1024 + 1))
    assert declared.status_code == 413

    async def chunks():  # no length given: counted as it arrives
        for _ in range(3):
            yield b"x" * (512 * 1024)

    with pytest.raises(FileTooLarge):
        remote.run(session.put_file("streamed.bin", chunks()))
    assert remote.execute(session, "1 + 1").text == "2\n"
    remote.run(session.close())


def test_sessions_spread_over_hosts_by_load_and_stay_on_theirs(remote, hosts):
    sessions = [remote.session() for _ in range(4)]
    placed = {host.url: [s for s in sessions if s.host.url == host.url] for host in hosts}
    assert [len(on_host) for on_host in placed.values()] == [2, 2]
    for host in hosts:
        assert host.health()["sessions"] == 2
    for index, session in enumerate(sessions):
        remote.execute(session, f"mine = {index}")
    assert [remote.execute(s, "mine").text for s in sessions] == ["0\n", "1\n", "2\n", "3\n"]
    for session in sessions:
        remote.run(session.close())
    assert [host.health()["sessions"] for host in hosts] == [0, 0]


def test_a_host_killed_mid_cell_ends_the_cell_and_new_sessions_go_elsewhere(tmp_path_factory):
    hosts = start_hosts(tmp_path_factory, env=HOST_ENV)
    harness = SandboxHarness(tmp_path_factory.mktemp("remote"), sandbox_warm_sessions=0, **remote_settings(hosts))
    try:
        first, second = harness.session(), harness.session()
        doomed = next(host for host in hosts if host.url == first.host.url)
        harness.execute(first, "kept = 1")

        def on_output(event):
            if "running" in event.text:
                doomed.kill()

        result = harness.execute(first, "import time\nprint('running', flush=True)\ntime.sleep(60)",
                                 on_output=on_output)
        assert result.status == "crashed" and result.state_lost
        assert result.outputs[0].text.startswith("running") and "state" in result.outputs[-1].text
        assert first.closed and harness.backend.get(first.id) is None
        with pytest.raises(SessionClosed):
            harness.execute(first, "kept")
        replacement = harness.session()
        assert replacement.host.url == second.host.url != doomed.url
        assert harness.execute(replacement, "1 + 1").text == "2\n"
        assert harness.execute(second, "2 + 2").text == "4\n"  # the other host's sessions live on
    finally:
        harness.close()
        for host in hosts:
            host.stop()


def test_a_restarted_host_loses_its_sessions(tmp_path_factory):
    (host,) = start_hosts(tmp_path_factory, count=1, env=HOST_ENV)
    harness = SandboxHarness(tmp_path_factory.mktemp("remote"), sandbox_warm_sessions=0, **remote_settings([host]))
    try:
        session = harness.session()
        harness.execute(session, "x = 1")
        assert harness.backend.counts() == {"live_sessions": 1}
        host.stop()
        with pytest.raises(SandboxError, match="No sandbox host answers"):
            harness.run(harness.backend.check())  # what /readyz asks
        host.start()
        harness.run(harness.backend.check())
        harness.run(harness.backend.check_host(session.host))  # what the backend's watch does every few seconds
        assert session.closed and harness.backend.get(session.id) is None
        fresh = harness.session()
        assert harness.execute(fresh, "'x' in globals()").text == "False\n"
    finally:
        harness.close()
        host.stop()


def test_mtls_host_refuses_clients_without_a_certificate(tmp_path_factory, tmp_path):
    certs = make_certificates(tmp_path)
    tls = {"CODEINTERP_SANDBOX_TLS_CERT": str(certs["host.pem"]), "CODEINTERP_SANDBOX_TLS_KEY": str(certs["host.key"]),
           "CODEINTERP_SANDBOX_TLS_CA": str(certs["ca.pem"])}
    host = SandboxHostProcess(tmp_path_factory.mktemp("tls-host"), {**HOST_ENV, **tls},
                              tls={"ca": certs["ca.pem"], "cert": certs["client.pem"], "key": certs["client.key"]})
    try:
        host.start()
        url = host.url
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.get(url + "/health", headers={"Authorization": f"Bearer {SECRET}"},
                      verify=ssl.create_default_context(cafile=str(certs["ca.pem"])))
        harness = SandboxHarness(tmp_path_factory.mktemp("remote"), sandbox_warm_sessions=0, sandbox_backend="remote",
                                 sandbox_hosts=url, sandbox_host_secret=SECRET, sandbox_tls_ca=certs["ca.pem"],
                                 sandbox_tls_cert=certs["client.pem"], sandbox_tls_key=certs["client.key"])
        try:
            session = harness.session()
            assert harness.execute(session, "6 * 7").text == "42\n"
        finally:
            harness.close()
    finally:
        host.stop()


def make_certificates(directory):
    """A CA, and a host and a client certificate it signed (openssl)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=test CA")
    for name, extension in (("host", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {name: directory / name for name in ("ca.pem", "host.pem", "host.key", "client.pem", "client.key")}


def test_a_name_that_is_not_utf8_crosses_the_wire_whole(remote):
    session = remote.session()
    assert remote.execute(session, "open(b'caf\\xe9 & co?.txt', 'wb').write(b'bytes')").status == "ok"
    (listed,) = remote.run(session.list_files())
    assert listed.path == b"caf\xe9 & co?.txt".decode("utf-8", "surrogateescape")
    assert remote.run(read_all(session, listed.path)) == b"bytes"
    remote.run(session.put_file(listed.path, b"replaced"))
    assert remote.execute(session, "open(b'caf\\xe9 & co?.txt', 'rb').read()").text == "b'replaced'\n"
    remote.run(session.close())

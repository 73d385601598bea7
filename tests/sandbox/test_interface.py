"""The sandbox interface's contract, checked against every backend: bubblewrap (the default),
remote (two `codeinterp sandbox-host` processes on loopback) and the in-process test backend
(tests/helpers/inprocess_backend.py). Code uses paths relative to /mnt/data (its working
directory in all)."""

import asyncio

import pytest

from codeinterp.sandbox.interface import read_all
from codeinterp.sandbox.types import FileTooLarge, SandboxError, SessionClosed
from tests.helpers.sandbox_hosts import remote_settings, start_hosts
from tests.sandbox.conftest import SandboxHarness

BACKENDS = {"bwrap": "bwrap", "inprocess": "tests.helpers.inprocess_backend:InProcessBackend", "remote": "remote"}
SETTINGS = {"sandbox_warm_sessions": 0, "sandbox_exec_timeout_seconds": 30, "sandbox_interrupt_grace_seconds": 2}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(request, tmp_path_factory):
    hosts = []
    settings = {**SETTINGS, "sandbox_backend": BACKENDS[request.param]}
    if request.param == "remote":  # the hosts run the sessions, under the same settings
        hosts = start_hosts(tmp_path_factory, env={f"CODEINTERP_{k.upper()}": str(v) for k, v in SETTINGS.items()})
        settings.update(remote_settings(hosts))
    harness = SandboxHarness(tmp_path_factory.mktemp(request.param), **settings)
    yield harness
    harness.close()
    for host in hosts:
        host.stop()


@pytest.fixture
def session(backend):
    session = backend.session()
    yield session
    backend.run(session.close())


def test_execute_keeps_state_between_cells(backend, session):
    assert backend.execute(session, "x = 41").status == "ok"
    result = backend.execute(session, "print('hello')\nx + 1")
    assert result.status == "ok" and result.text == "hello\n42\n"
    failed = backend.execute(session, "1 / 0")
    assert failed.status == "error" and failed.outputs[-1].ename == "ZeroDivisionError"
    assert backend.backend.get(session.id) is session


def test_outputs_reach_on_output_while_the_cell_runs(backend, session):
    # The cell waits for a file that the callback writes when it sees the first line: were outputs
    # held until the end, the cell would wait until its timeout.
    seen = []

    async def on_output(event):
        seen.append((event.kind, event.text))
        if "waiting" in event.text:
            await session.put_file("go", b"")

    code = ("import os, time\nprint('waiting', flush=True)\n"
            "while not os.path.exists('go'):\n    time.sleep(0.01)\nprint('done')")
    result = backend.execute(session, code, timeout=20, on_output=on_output)
    assert result.status == "ok", result.outputs
    assert "".join(text for kind, text in seen if kind == "stdout") == "waiting\ndone\n"


def test_interrupt_stops_the_running_cell_and_keeps_state(backend, session):
    backend.execute(session, "kept = 'yes'")

    def on_output(event):
        if "sleeping" in event.text:
            asyncio.ensure_future(session.interrupt())

    result = backend.execute(session, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
                             on_output=on_output)
    assert result.status == "error" and "KeyboardInterrupt" in result.text
    assert backend.execute(session, "kept").text == "'yes'\n"


def test_files_put_read_and_list(backend, session):
    async def chunks():
        for part in (b"a,b\n", b"1,2\n", b"3,4\n"):
            yield part

    backend.run(session.put_file("small.txt", b"bytes"))
    backend.run(session.put_file("in/table.csv", chunks()))
    assert backend.run(read_all(session, "in/table.csv")) == b"a,b\n1,2\n3,4\n"
    result = backend.execute(session, "open('out.txt', 'w').write(open('in/table.csv').read().upper())")
    assert [f.path for f in result.files_changed] == ["out.txt"]
    assert backend.run(read_all(session, "out.txt")) == b"A,B\n1,2\n3,4\n"
    listed = {f.path: f.size for f in backend.run(session.list_files())}
    assert listed == {"small.txt": 5, "in/table.csv": 12, "out.txt": 12}
    with pytest.raises(FileNotFoundError):
        backend.run(read_all(session, "missing.txt"))
    with pytest.raises(SandboxError):
        backend.run(session.put_file("../outside.txt", b"x"))


def test_read_file_past_max_bytes_is_too_large(backend, session):
    backend.run(session.put_file("ten.bin", b"0123456789"))
    assert backend.run(read_all(session, "ten.bin", max_bytes=10)) == b"0123456789"
    with pytest.raises(FileTooLarge):
        backend.run(read_all(session, "ten.bin", max_bytes=5))


def test_links_are_never_followed(backend, session, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"host secret")
    outside = tmp_path / "outside"
    outside.mkdir()
    code = (f"import os\nos.symlink({str(secret)!r}, 'sym.txt')\nos.symlink({str(outside)!r}, 'linkdir')\n"
            "open('real.txt', 'w').write('mine')\nos.link('real.txt', 'hard.txt')")
    assert backend.execute(session, code).status == "ok"
    for name in ("sym.txt", "linkdir/secret.txt", "hard.txt", "linkdir"):
        with pytest.raises(FileNotFoundError):
            backend.run(read_all(session, name))
    assert {f.path for f in backend.run(session.list_files())} == set()  # links and doubly linked files
    backend.run(session.put_file("sym.txt", b"replaced"))  # replaces the link, never writes through it
    assert secret.read_bytes() == b"host secret"
    assert backend.run(read_all(session, "sym.txt")) == b"replaced"
    with pytest.raises((OSError, SandboxError)):
        backend.run(session.put_file("linkdir/planted.txt", b"x"))
    assert list(outside.iterdir()) == []


def test_close_ends_the_session(backend):
    session = backend.session()
    backend.execute(session, "x = 1")
    backend.run(session.close())
    assert session.closed and backend.backend.get(session.id) is None
    with pytest.raises(SessionClosed):
        backend.execute(session, "x")
    with pytest.raises(SessionClosed):
        backend.run(session.put_file("a.txt", b"x"))
    backend.run(session.close())  # twice is fine

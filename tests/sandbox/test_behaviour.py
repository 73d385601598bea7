"""A session behaves like a notebook: state, values, streams, figures, files, timeouts, crashes."""

import time
from pathlib import Path

import pytest

from codeinterp.sandbox.interface import read_all
from codeinterp.sandbox.types import SessionClosed, SessionLimitReached
from tests.sandbox.conftest import session_group

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def session(sandbox):
    s = sandbox.session()
    yield s
    sandbox.run(s.close())


def test_state_persists_and_last_expression_is_shown(sandbox, session):
    assert sandbox.execute(session, "x = 40\nimport math").status == "ok"
    result = sandbox.execute(session, "x + 2")
    assert result.status == "ok"
    assert [(o.kind, o.text) for o in result.outputs] == [("result", "42")]
    assert sandbox.execute(session, "2 + 2").text == "4\n"
    assert sandbox.execute(session, "math.sqrt(x + 9)").text == "7.0\n"


def test_stdout_and_stderr_keep_their_order(sandbox, session):
    result = sandbox.execute(session, "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')")
    assert [(o.kind, o.text) for o in result.outputs] == [("stdout", "one\n"), ("stderr", "two\n"),
                                                          ("stdout", "three\n")]


def test_output_streams_as_it_comes(sandbox, session):
    seen = []

    def on_output(event):
        seen.append((time.monotonic(), event.text))

    sandbox.execute(session, "import time\nprint('first', flush=True)\ntime.sleep(0.5)\nprint('second')",
                    on_output=on_output)
    assert "".join(text for _, text in seen) == "first\nsecond\n"
    first = next(at for at, text in seen if "first" in text)
    second = next(at for at, text in seen if "second" in text)
    assert second - first > 0.3  # the first line arrived before the cell ended


def test_exception_gives_a_traceback_and_the_session_lives(sandbox, session):
    result = sandbox.execute(session, "print('before')\nraise ValueError('bad input')")
    assert result.status == "error"
    assert result.outputs[0].text == "before\n"
    error = result.outputs[-1]
    assert error.kind == "error" and error.ename == "ValueError" and error.evalue == "bad input"
    assert "ValueError: bad input" in error.text and "\x1b[" not in error.text
    assert sandbox.execute(session, "'still here'").text == "'still here'\n"


def test_matplotlib_figures_become_pngs(sandbox, session):
    shown = sandbox.execute(session, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    open_left = sandbox.execute(session, "fig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 4])")
    for result in (shown, open_left):
        images = [o for o in result.outputs if o.kind == "image"]
        assert len(images) == 1 and images[0].png.startswith(PNG_MAGIC)


def test_data_stack_is_importable(sandbox, session):
    code = ("import numpy, pandas, scipy, sklearn, sympy, statsmodels, seaborn, PIL, openpyxl, xlrd, pyarrow, "
            "docx, pptx, pypdf, reportlab, tabulate, requests\n"
            "pandas.DataFrame({'a': [1, 2]}).a.sum().item()")
    result = sandbox.execute(session, code)
    assert result.status == "ok", result.text
    assert result.outputs[-1].text == "3"


def test_files_in_and_out(sandbox, session):
    sandbox.run(session.put_file("input.csv", b"a,b\n1,2\n3,4\n"))
    result = sandbox.execute(session, "import os, pandas as pd\nos.makedirs('/mnt/data/out', exist_ok=True)\n"
                                      "df = pd.read_csv('/mnt/data/input.csv')\n"
                                      "df.assign(c=df.a + df.b).to_csv('/mnt/data/out/result.csv', index=False)")
    assert result.status == "ok", result.text
    assert [c.path for c in result.files_changed] == ["out/result.csv"]
    assert sandbox.run(read_all(session, "out/result.csv")) == b"a,b,c\n1,2,3\n3,4,7\n"
    assert "input.csv" in [f.path for f in sandbox.run(session.list_files())]


def test_changes_are_found_in_small_and_large_data_dirs(sandbox, session):
    for count in (3, 300):  # a few files are looked at on the event loop, many in a thread
        result = sandbox.execute(session, f"for n in range({count}):\n"
                                          f"    open(f'/mnt/data/f{count}_{{n}}.txt', 'w').write(str(n))")
        assert result.status == "ok", result.text
        assert sorted(c.path for c in result.files_changed) == sorted(f"f{count}_{n}.txt" for n in range(count))
        assert sandbox.run(read_all(session, f"f{count}_2.txt")) == b"2"


def test_timeout_interrupts_and_keeps_state(sandbox, session):
    sandbox.execute(session, "kept = 'yes'")
    result = sandbox.execute(session, "import time\nwhile True: time.sleep(0.05)", timeout=1)
    assert result.status == "timeout" and not result.state_lost
    assert any(o.kind == "error" and o.ename == "KeyboardInterrupt" for o in result.outputs)
    assert sandbox.execute(session, "kept").text == "'yes'\n"


def test_interrupt_stops_a_running_cell(sandbox, session):
    import threading

    timer = threading.Timer(0.5, lambda: sandbox.run(session.interrupt()))
    timer.start()
    result = sandbox.execute(session, "import time\ntime.sleep(30)")
    assert result.status == "error" and result.outputs[-1].ename == "KeyboardInterrupt"


def test_cell_that_ignores_interrupts_is_killed_and_restarted(sandbox, session):
    sandbox.execute(session, "lost = 1")
    code = "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
    result = sandbox.execute(session, code, timeout=0.5)
    assert result.status == "killed" and result.state_lost
    after = sandbox.execute(session, "'lost' in globals()")
    assert after.state_lost and after.outputs[0].kind == "notice" and "restarted" in after.outputs[0].text
    assert after.outputs[-1].text == "False"


@pytest.mark.parametrize("code", ["import os\nos._exit(3)", "import ctypes\nctypes.string_at(0)"])
def test_dead_kernel_is_reported_and_restarted(sandbox, session, code):
    sandbox.run(session.put_file("kept.txt", b"still here"))
    result = sandbox.execute(session, code)
    assert result.status == "crashed" and result.state_lost
    assert "kernel died" in result.outputs[-1].text
    after = sandbox.execute(session, "open('/mnt/data/kept.txt').read()")
    assert after.outputs[0].kind == "notice" and after.outputs[-1].text == "'still here'"


def test_output_is_capped_with_a_marker(sandbox):
    from dataclasses import replace

    from codeinterp.sandbox.limits import limits_from

    session = sandbox.session(limits=replace(limits_from(sandbox.settings), output_bytes=10_000))
    try:
        result = sandbox.execute(session, "for i in range(100000): print('x' * 100)")
        assert result.status == "ok" and result.truncated
        assert sum(len(o.text) for o in result.outputs if o.kind == "stdout") <= 10_000
        assert "[output truncated after 10000 bytes]" in result.text
        assert sandbox.execute(session, "print('fresh budget')").text == "fresh budget\n"
    finally:
        sandbox.run(session.close())


def test_idle_sessions_expire(sandbox):
    session = sandbox.session(expiry_seconds=0.3)
    sandbox.execute(session, "1")
    deadline = time.monotonic() + 10
    while sandbox.backend.get(session.id) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox.backend.get(session.id) is None
    with pytest.raises(SessionClosed):
        sandbox.execute(session, "1")


def test_live_session_cap(tmp_path):
    from tests.sandbox.conftest import SandboxHarness

    harness = SandboxHarness(tmp_path, sandbox_max_sessions=2)
    try:
        first, second = harness.session(), harness.session()
        with pytest.raises(SessionLimitReached, match="at most 2"):
            harness.session()
        harness.run(first.close())
        third = harness.session()
        assert harness.execute(third, "1 + 1").text == "2\n"
        assert harness.execute(second, "2 + 2").text == "4\n"
    finally:
        harness.close()


def test_kernel_that_dies_between_executions_is_restarted_with_a_notice(sandbox, session):
    sandbox.execute(session, "import os, threading, time\n"
                             "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(1))).start()")
    procs = session_group("pids", session.id) / "cgroup.procs"
    deadline = time.monotonic() + 60
    while procs.read_text().split() and time.monotonic() < deadline:  # until the kernel has exited
        time.sleep(0.05)
    assert procs.read_text().split() == []
    result = sandbox.execute(session, "1 + 1")
    assert result.status == "ok" and result.state_lost
    assert result.outputs[0].kind == "notice" and "between executions" in result.outputs[0].text
    assert result.outputs[-1].text == "2"


def test_out_of_memory_is_a_crash_naming_the_limit(sandbox):
    from dataclasses import replace

    from codeinterp.sandbox.limits import limits_from

    session = sandbox.session(limits=replace(limits_from(sandbox.settings), memory_mb=200))
    try:
        result = sandbox.execute(session, "kept = 1\nblob = b'x' * (400 << 20)")
        assert result.status == "crashed" and result.state_lost
        assert "memory limit (200 MB)" in result.outputs[-1].text
        after = sandbox.execute(session, "'kept' in globals()")
        assert after.outputs[0].kind == "notice" and after.outputs[-1].text == "False"
    finally:
        sandbox.run(session.close())


def test_manager_starts_at_once_and_sessions_wait_for_the_warm_parent(tmp_path):
    from tests.sandbox.conftest import SandboxHarness

    harness = SandboxHarness(tmp_path)
    try:
        assert not harness.backend.ready()  # start() returned before the data stack was imported
        session = harness.session()
        assert harness.execute(session, "1 + 1").text == "2\n"
    finally:
        harness.close()


def test_a_dead_warm_parent_is_restarted_and_its_sessions_end(tmp_path):
    from tests.sandbox.conftest import SandboxHarness

    harness = SandboxHarness(tmp_path)
    try:
        old = harness.session()
        harness.backend.parent.process.kill()
        harness.backend.parent.process.wait()
        fresh = harness.session()
        assert harness.execute(fresh, "1 + 1").text == "2\n"
        assert harness.backend.get(old.id) is None
        with pytest.raises(SessionClosed):
            harness.execute(old, "1")
    finally:
        harness.close()


def test_sessions_handed_out_warm_start_empty(sandbox):
    first = sandbox.session()
    try:
        sandbox.run(first.put_file("mine.txt", b"first"))
        sandbox.execute(first, "secret = 1")
        deadline = time.monotonic() + 10
        while not sandbox.backend.warm_ready and time.monotonic() < deadline:
            time.sleep(0.05)
        second = sandbox.session()
        try:
            assert sandbox.run(second.list_files()) == []
            assert sandbox.execute(second, "'secret' in globals(), sorted(__import__('os').listdir('/mnt/data'))"
                                   ).text == "(False, [])\n"
            assert sandbox.backend.get(second.id) is second and second.id != first.id
        finally:
            sandbox.run(second.close())
    finally:
        sandbox.run(first.close())


def test_closing_while_warm_sessions_start_ends_every_process(tmp_path):
    from tests.sandbox.conftest import SandboxHarness

    harness = SandboxHarness(tmp_path, sandbox_warm_sessions=3)
    session = harness.session()  # the warm keeper is now starting sessions
    kernel_pid = session.kernel.pid
    zygote = harness.backend.parent.process
    harness.run(harness.backend.stop(), timeout=60)
    harness.loop.stop()
    assert zygote.poll() is not None
    assert _ends(kernel_pid)
    assert harness.backend.sessions == [] and harness.backend.warm_sessions == []


def _ends(pid: int, within: float = 10.0) -> bool:
    """Whether the process is gone (or a zombie left to be reaped) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_a_cell_whose_caller_is_cancelled_leaves_nothing_in_the_next_cell(sandbox, session):
    import asyncio

    async def cancel_mid_cell():
        started = asyncio.Event()

        def on_output(event):
            started.set()

        task = asyncio.ensure_future(session.execute("import time\nx = 5\nprint('started', flush=True)\n"
                                                     "time.sleep(60)", on_output=on_output))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    sandbox.run(cancel_mid_cell())
    result = sandbox.execute(session, "print(x)")
    assert [(o.kind, o.text) for o in result.outputs] == [("stdout", "5\n")]  # no KeyboardInterrupt traceback
    assert result.status == "ok" and not result.state_lost

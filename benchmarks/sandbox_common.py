"""Shared pieces of the sandbox benchmarks: a manager on a temporary data dir, the baselines
(a bare Jupyter kernel through jupyter_client, a plain pipe-driven Python process), PSS and
percentiles."""

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if not os.environ.get("PYTHONPATH"):  # paired.py names the source to measure through PYTHONPATH
    sys.path.insert(0, str(PROJECT / "src"))

SANDBOX_PYTHON = Path(os.environ.get("CODEINTERP_SANDBOX_ENV", PROJECT / ".sandbox-env")) / "bin" / "python"
DATA_STACK = "import numpy, pandas, matplotlib, matplotlib.pyplot"
PIPE_LOOP = ("import sys\n"
             "for line in sys.stdin:\n"
             "    sys.stdout.write(repr(eval(line)) + '\\n')\n"
             "    sys.stdout.flush()\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def line(label: str, values_ms: list[float]) -> str:
    return (f"  {label:<46} p50 {percentile(values_ms, 50):8.2f} ms   p95 {percentile(values_ms, 95):8.2f} ms"
            f"   mean {statistics.fmean(values_ms):8.2f} ms   (n={len(values_ms)})")


def jupyter_line(values_ms: list[float] | None) -> str:
    """The bare-ipykernel baseline's line; None when jupyter_client is not installed."""
    label = "bare ipykernel via jupyter_client"
    if values_ms is None:
        return f"  {label:<46} skipped: pip install -e '.[bench]'"
    return line(label, values_ms)


def _make_backend(settings):
    """The configured sandbox backend (an earlier commit, run by paired.py, has SandboxManager)."""
    try:
        from codeinterp.sandbox import create_backend
    except ImportError:
        from codeinterp.sandbox.manager import SandboxManager

        return SandboxManager(settings)
    return create_backend(settings)


@contextlib.asynccontextmanager
async def sandbox_manager(**overrides):
    from codeinterp.config import Settings

    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-") as data_dir:
        manager = _make_backend(Settings(data_dir=Path(data_dir), **overrides))
        await manager.start()
        if hasattr(manager, "wait_ready"):  # the warm parent starts in the background
            await manager.wait_ready()
        try:
            yield manager
        finally:
            await (manager.stop() if hasattr(manager, "stop") else manager.close())


def session_pids(session) -> list[int]:
    """Host pids of a session's processes (its control group, else its kernel)."""
    pids: list[int] = []
    if session.group is not None:
        with contextlib.suppress(OSError):
            pids = session.group.pids()
    if not pids and session.kernel is not None:
        pids = [session.kernel.pid]
    return pids


def pss_kb(pid: int) -> int:
    """Proportional set size of one process in kB (0 when it is gone)."""
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if row.startswith("Pss:"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def warm_session_pids(manager) -> list[int]:
    """The processes of the sessions started ahead of demand and not handed out yet."""
    warm = getattr(manager, "warm_sessions", None)
    if warm is None:
        warm = getattr(manager, "_warm", [])
    return [pid for session in warm for pid in session_pids(session)]


def zygote_pids(manager) -> list[int]:
    """bubblewrap and the warm parent (shared by every session), without the sessions' kernels
    (the warm sessions' included: see warm_session_pids)."""
    zygote = manager.parent.process if hasattr(manager, "parent") else getattr(manager, "_zygote", None)
    if zygote is None:
        return []
    kernels = {pid for session in manager.sessions for pid in session_pids(session)} | set(warm_session_pids(manager))
    found, queue = [], [zygote.pid]
    while queue:
        pid = queue.pop()
        if pid in kernels:
            continue
        found.append(pid)
        with contextlib.suppress(OSError):
            queue += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return found


# ---- baselines ------------------------------------------------------------------------------

class PipePython:
    """A plain Python process driven line by line over pipes."""

    def __init__(self, python: str = sys.executable, preload: str = "") -> None:
        self.process = subprocess.Popen([python, "-c", preload + "\n" + PIPE_LOOP], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, expression: str) -> str:
        self.process.stdin.write(expression + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def jupyter_available() -> bool:
    try:
        import ipykernel  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError:
        return False
    return True


class JupyterKernel:
    """A bare ipykernel started and driven by jupyter_client (the usual way to run notebook code)."""

    def __init__(self) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.kernel_spec  # resolve now, not inside the timing
        self.manager.start_kernel(extra_arguments=["--HistoryManager.enabled=False"],
                                  env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
                                  stderr=subprocess.DEVNULL)
        self.client = self.manager.client()
        self.client.start_channels()

    def ask(self, code: str, timeout: float = 60) -> str:
        """Run code and return the text of its execute_result."""
        msg_id = self.client.execute(code, store_history=False)
        result = ""
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "execute_result":
                result = message["content"]["data"].get("text/plain", "")
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return result

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def time_jupyter_first_result(runs: int) -> list[float]:
    """ms from starting a bare kernel to the first result of 1+1."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        kernel = JupyterKernel()
        try:
            kernel.client.wait_for_ready(timeout=60)
            assert kernel.ask("1+1") == "2"
            samples.append((time.perf_counter() - started) * 1000)
        finally:
            kernel.close()
    return samples


def time_pipe_first_result(runs: int) -> list[float]:
    """ms from starting `python -c` (pipe-driven) to the first result of 1+1."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        process = PipePython()
        try:
            assert process.ask("1+1") == "2"
            samples.append((time.perf_counter() - started) * 1000)
        finally:
            process.close()
    return samples


def run(main) -> None:
    asyncio.run(main())

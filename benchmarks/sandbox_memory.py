"""Memory per idle session and 100 live sessions, beside a bare interpreter measured in the same run.

    .venv/bin/python benchmarks/sandbox_memory.py [--idle 10] [--live 100]

- PSS per idle session with numpy, pandas and matplotlib imported: the sum of `Pss` from
  /proc/<pid>/smaps_rollup over the processes in the session's cgroup (pages shared with the warm
  parent and the other sessions count in proportion); baseline: a bare sandbox-env interpreter
  that imported the same (PSS and RSS, alone).
- 100 live sessions: started one after another, each imports the data stack and answers `1+1`;
  then every one answers `1+1` again. Prints the time taken, the PSS of all of them (and of the
  warm parent) and the fall of the host's MemAvailable.
Targets: <= 40 MB PSS per idle session; 100 sessions on this 2-core, 24 GB machine. Printed,
not asserted.
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from codeinterp.config import Settings  # noqa: E402
from codeinterp.sandbox.manager import SandboxManager  # noqa: E402

SANDBOX_PYTHON = ROOT / ".sandbox-env" / "bin" / "python"
STACK = "import numpy, pandas, matplotlib, matplotlib.pyplot"
MB = 1024 * 1024


def rollup(pid: int) -> dict[str, int]:
    """Fields of /proc/<pid>/smaps_rollup, in bytes."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value, *_ = line.split()
            values[name.rstrip(":")] = int(value) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return values


def session_pss(session) -> int:
    pids = session.group.pids() if session.group else [session.kernel.pid]
    return sum(rollup(pid).get("Pss", 0) for pid in pids)


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def bare_interpreter() -> dict[str, int]:
    process = subprocess.Popen([str(SANDBOX_PYTHON), "-c", f"{STACK}\nimport sys\nprint('ready', flush=True)\n"
                                                           "sys.stdin.read()"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    values = rollup(process.pid)
    process.stdin.close()
    process.wait()
    return values


async def measure(idle: int, live: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-") as data:
        settings = Settings(data_dir=Path(data), sandbox_max_sessions=max(200, live + 10))
        manager = SandboxManager(settings)
        await manager.start()
        try:
            warm = await manager.create_session()  # make sure the warm parent is up
            await warm.execute("1+1")
            zygote_pid = manager._zygote.pid if manager._zygote else None
            idle_sessions = []
            for _ in range(idle):
                session = await manager.create_session()
                result = await session.execute(STACK + "\n1+1")
                assert result.text == "2\n", result.outputs
                idle_sessions.append(session)
            await asyncio.sleep(1)
            per_idle = [session_pss(s) for s in idle_sessions]
            for session in idle_sessions + [warm]:
                await session.close()

            available_before = mem_available()
            started = time.perf_counter()
            sessions = []
            for _ in range(live):
                session = await manager.create_session()
                result = await session.execute(STACK + "\n1+1")
                assert result.text == "2\n", result.outputs
                sessions.append(session)
            start_time = time.perf_counter() - started
            started = time.perf_counter()
            answers = await asyncio.gather(*(s.execute("1+1") for s in sessions))
            answer_time = time.perf_counter() - started
            assert all(a.text == "2\n" for a in answers)
            await asyncio.sleep(1)
            live_pss = [session_pss(s) for s in sessions]
            available_after = mem_available()
            parent_pss = sum(rollup(pid).get("Pss", 0) for pid in _tree(zygote_pid)) if zygote_pid else 0
            for session in sessions:
                await session.close()
        finally:
            await manager.close()
    return {"per_idle": per_idle, "live_pss": live_pss, "start_time": start_time, "answer_time": answer_time,
            "available_drop": available_before - available_after, "parent_pss": parent_pss}


def _tree(pid: int) -> list[int]:
    """The bubblewrap process, the warm parent inside it (not the sessions: they are counted apart)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return pids
    for child in children:
        pids.append(int(child))
        try:
            pids += [int(c) for c in Path(f"/proc/{child}/task/{child}/children").read_text().split()
                     if (Path(f"/proc/{c}/cmdline").read_bytes().find(b"zygote.py") >= 0)]
        except FileNotFoundError:
            pass
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=10)
    parser.add_argument("--live", type=int, default=100)
    args = parser.parse_args()

    bare = bare_interpreter()
    figures = asyncio.run(measure(args.idle, args.live))
    per_idle = sorted(figures["per_idle"])
    print("Memory per idle session (numpy, pandas, matplotlib imported)")
    print(f"  codeinterp session, PSS, {args.idle} idle sessions: median {per_idle[len(per_idle) // 2] / MB:7.1f} MB,"
          f" max {per_idle[-1] / MB:7.1f} MB   target <= 40 MB")
    print(f"  baseline: bare interpreter that imported the same: PSS {bare.get('Pss', 0) / MB:7.1f} MB, "
          f"RSS {bare.get('Rss', 0) / MB:7.1f} MB")
    live = figures["live_pss"]
    print(f"{args.live} live sessions (each imported the data stack and answered `1+1`)")
    print(f"  started one after another in {figures['start_time']:.2f} s "
          f"({figures['start_time'] / args.live * 1000:.0f} ms each, import of the stack included)")
    print(f"  all {args.live} answered `1+1` again, at once, in {figures['answer_time'] * 1000:.0f} ms")
    print(f"  PSS of the sessions: {sum(live) / MB:.0f} MB in all, {sum(live) / len(live) / MB:.1f} MB each; "
          f"warm parent {figures['parent_pss'] / MB:.0f} MB")
    print(f"  host MemAvailable fell by {figures['available_drop'] / MB:.0f} MB "
          f"(baseline: {args.live} bare interpreters would take about {args.live * bare.get('Pss', 0) / MB:.0f} MB)")


if __name__ == "__main__":
    main()

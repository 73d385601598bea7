"""100 live sandbox sessions on this host: start them (in waves of concurrent starts), check that
each one answers `1+1` and can use pandas, then print the time taken and the memory they hold
(PSS summed over every session's processes and the warm parent), beside bare Python interpreters
with the same imports (the sandbox's environment, no isolation) measured in the same run.

    .venv/bin/python benchmarks/sandbox_scale.py [--sessions 100] [--wave 10] [--baseline 20]
"""

import argparse
import asyncio
import time

from sandbox_common import DATA_STACK, SANDBOX_PYTHON, PipePython, pss_kb, run, sandbox_manager, session_pids, zygote_pids

CELL = DATA_STACK + "\nint(pandas.Series([1, 1]).sum())"


def meminfo_kb(field: str) -> int:
    for row in open("/proc/meminfo"):
        if row.startswith(field + ":"):
            return int(row.split()[1])
    return 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--wave", type=int, default=10)
    parser.add_argument("--baseline", type=int, default=20, help="bare interpreters started for the baseline")
    args = parser.parse_args()

    available_before = meminfo_kb("MemAvailable")
    async with sandbox_manager(sandbox_max_sessions=max(200, args.sessions)) as manager:
        started = time.perf_counter()
        sessions = []
        for first in range(0, args.sessions, args.wave):
            count = min(args.wave, args.sessions - first)
            sessions += await asyncio.gather(*(manager.create_session() for _ in range(count)))
        start_seconds = time.perf_counter() - started
        results = await asyncio.gather(*(session.execute(CELL) for session in sessions))
        ready_seconds = time.perf_counter() - started
        answered = sum(result.text == "2\n" for result in results)
        again = await asyncio.gather(*(session.execute("1+1") for session in sessions))
        answered_again = sum(result.text == "2\n" for result in again)
        await asyncio.sleep(1)
        sessions_pss = sum(pss_kb(pid) for session in sessions for pid in session_pids(session))
        parent_pss = sum(pss_kb(pid) for pid in zygote_pids(manager))
        available_during = meminfo_kb("MemAvailable")

    started = time.perf_counter()
    bare = [PipePython(str(SANDBOX_PYTHON), preload=DATA_STACK) for _ in range(args.baseline)]
    try:
        assert all(process.ask("int(pandas.Series([1, 1]).sum())") == "2" for process in bare)
        bare_seconds = time.perf_counter() - started
        bare_pss = sum(pss_kb(process.process.pid) for process in bare)
    finally:
        for process in bare:
            process.close()

    total = sessions_pss + parent_pss
    n = args.sessions
    print(f"{n} live sessions (started in waves of {args.wave})")
    print(f"  create_session calls returned in {start_seconds:.2f} s; every session had run a pandas cell "
          f"(its kernel started) by {ready_seconds:.2f} s ({ready_seconds / n * 1000:.1f} ms per session)")
    print(f"  answered the pandas cell: {answered}/{n}; then 1+1: {answered_again}/{n}")
    print(f"  memory: sessions {sessions_pss / 1024:.0f} MB + warm parent {parent_pss / 1024:.0f} MB = "
          f"{total / 1024:.0f} MB PSS ({total / n / 1024:.1f} MB per session); "
          f"host MemAvailable fell by {(available_before - available_during) / 1024:.0f} MB "
          "(whatever else runs on the host included)")
    print(f"Baseline (same run): {args.baseline} bare python processes with the same imports")
    print(f"  ready in {bare_seconds:.2f} s ({bare_seconds / args.baseline * 1000:.1f} ms each); "
          f"{bare_pss / 1024:.0f} MB PSS ({bare_pss / args.baseline / 1024:.1f} MB each)")
    print(f"Target {n} live sessions: {'met' if answered == answered_again == n else 'NOT met'}")


if __name__ == "__main__":
    run(main)

"""Memory per idle sandbox session with numpy, pandas and matplotlib imported: the proportional
set size (PSS, from /proc/<pid>/smaps_rollup) summed over each session's processes (its control
group), beside bare Python interpreters (the sandbox's own environment, no isolation) with the
same imports, measured in the same run. Target: at most 40 MB PSS per session.

    .venv/bin/python benchmarks/sandbox_memory.py [--sessions 10]

The warm parent that every session is forked from is shown on its own line; its share per session
shrinks as sessions are added. (100 live sessions: benchmarks/sandbox_scale.py.)
"""

import argparse
import asyncio
import statistics
import time

from sandbox_common import (
    DATA_STACK, SANDBOX_PYTHON, PipePython, pss_kb, run, sandbox_manager, session_pids, warm_session_pids, zygote_pids,
)

CELL = DATA_STACK + "\nfig = matplotlib.pyplot.figure(); matplotlib.pyplot.close(fig)\n1+1"


def mb(kb: float) -> str:
    return f"{kb / 1024:7.1f} MB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()

    async with sandbox_manager() as manager:
        sessions = [await manager.create_session() for _ in range(args.sessions)]
        for session in sessions:
            result = await session.execute(CELL)
            assert result.text == "2\n", result.outputs
        await asyncio.sleep(1)  # idle
        per_session = [sum(pss_kb(pid) for pid in session_pids(session)) for session in sessions]
        processes = [len(session_pids(session)) for session in sessions]
        parent = sum(pss_kb(pid) for pid in zygote_pids(manager))
        warm = sum(pss_kb(pid) for pid in warm_session_pids(manager))
        warm_count = manager.warm_ready

    bare = [PipePython(str(SANDBOX_PYTHON), preload=DATA_STACK) for _ in range(args.sessions)]
    try:
        for process in bare:
            assert process.ask("1+1") == "2"
        time.sleep(1)
        bare_pss = [pss_kb(process.process.pid) for process in bare]
    finally:
        for process in bare:
            process.close()

    total = sum(per_session) + parent
    print(f"PSS per idle session with numpy, pandas and matplotlib imported "
          f"({args.sessions} sessions; target <= 40 MB)")
    print(f"  codeinterp session ({statistics.mode(processes)} process(es) each)     "
          f"mean {mb(statistics.fmean(per_session))}  max {mb(max(per_session))}")
    print(f"  warm parent and bubblewrap (shared by all)    {mb(parent)}")
    print(f"  all sessions + warm parent, per session       {mb(total / args.sessions)}")
    print(f"  {warm_count} warm sessions waiting to be handed out {mb(warm)} in all (not counted above)")
    print("Baseline (same run):")
    print(f"  bare python with the same imports ({args.sessions} at once) "
          f"mean {mb(statistics.fmean(bare_pss))}  max {mb(max(bare_pss))}")
    verdict = "met" if statistics.fmean(per_session) <= 40 * 1024 else "NOT met"
    print(f"Target <= 40 MB PSS per idle session: {verdict}")


if __name__ == "__main__":
    run(main)

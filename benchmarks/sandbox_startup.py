"""New sandbox session to the first result of `1+1`, one at a time and in a burst of concurrent
starts, beside a bare Jupyter kernel (jupyter_client + ipykernel) and a plain pipe-driven
`python -c` process measured in the same run. Target: p50 at most 50 ms, also in the burst.

    .venv/bin/python benchmarks/sandbox_startup.py [--sessions 30] [--burst 20] [--baseline-runs 5]

Each session is isolated (bubblewrap namespaces, cgroups, seccomp, uid 65534) and can import
numpy, pandas and matplotlib at once (the warm parent imported them).
"""

import argparse
import asyncio
import time

from sandbox_common import (
    jupyter_available, line, percentile, run, sandbox_manager, time_jupyter_first_result, time_pipe_first_result,
)


PHASES: dict[str, list[float]] = {"create_session": [], "first execute": []}


async def new_session_first_result(manager) -> float:
    started = time.perf_counter()
    session = await manager.create_session()
    created = time.perf_counter()
    result = await session.execute("1+1")
    finished = time.perf_counter()
    assert result.status == "ok" and result.text == "2\n", result.outputs
    PHASES["create_session"].append((created - started) * 1000)
    PHASES["first execute"].append((finished - created) * 1000)
    await session.close()
    return (finished - started) * 1000


async def burst(manager, size: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    sessions_ms = await asyncio.gather(*(new_session_first_result(manager) for _ in range(size)))
    return list(sessions_ms), (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=5)
    args = parser.parse_args()

    async with sandbox_manager() as manager:
        await new_session_first_result(manager)  # warm-up
        for phase in PHASES.values():
            phase.clear()
        sequential = [await new_session_first_result(manager) for _ in range(args.sessions)]
        phases = {name: list(values) for name, values in PHASES.items()}
        concurrent: list[float] = []
        walls = []
        for _ in range(args.bursts):
            samples, wall = await burst(manager, args.burst)
            concurrent += samples
            walls.append(wall)

    pipe = await asyncio.to_thread(time_pipe_first_result, max(args.baseline_runs, 10))
    jupyter = (await asyncio.to_thread(time_jupyter_first_result, args.baseline_runs)
               if jupyter_available() else None)

    print("New session to the first result of 1+1 (target: p50 <= 50 ms)")
    print(line("codeinterp session, one at a time", sequential))
    for name, values in phases.items():
        print(line(f"  of which {name}", values))
    print(line(f"codeinterp session, bursts of {args.burst} at once", concurrent))
    print(f"  {'':<46} whole burst of {args.burst}: p50 {percentile(walls, 50):.0f} ms")
    print("Baselines (same run):")
    if jupyter is not None:
        print(line("bare ipykernel via jupyter_client", jupyter))
    else:
        print("  bare ipykernel via jupyter_client               skipped: pip install -e '.[bench]'")
    print(line("plain `python -c` pipe process (no isolation)", pipe))
    verdict = "met" if percentile(sequential, 50) <= 50 and percentile(concurrent, 50) <= 50 else "NOT met"
    print(f"Target p50 <= 50 ms (one at a time and in the burst): {verdict}")


if __name__ == "__main__":
    run(main)

"""New sandbox session to the first result of `1+1`, one at a time and in bursts of concurrent
starts (after a pause in which the warm sessions are started again, and back to back without
one), beside a bare Jupyter kernel (jupyter_client + ipykernel) and a plain pipe-driven
`python -c` process measured in the same run. Target: p50 at most 50 ms, also in the burst.

    .venv/bin/python benchmarks/sandbox_startup.py [--sessions 30] [--burst 20] [--baseline-runs 5]

The manager runs with its default settings (CODEINTERP_SANDBOX_WARM_SESSIONS warm sessions).
Each session is isolated (bubblewrap namespaces, cgroups, seccomp, uid 65534) and can import
numpy, pandas and matplotlib at once (the warm parent imported them).
"""

import argparse
import asyncio
import time

from sandbox_common import (
    jupyter_available, jupyter_line, line, percentile, run, sandbox_manager, time_jupyter_first_result, time_pipe_first_result,
)


PHASES: dict[str, list[float]] = {"create_session": [], "first execute": []}


async def started_session(manager) -> tuple[float, object]:
    """(milliseconds from asking for a new session to the result of its first `1+1`, the session)"""
    started = time.perf_counter()
    session = await manager.create_session()
    created = time.perf_counter()
    result = await session.execute("1+1")
    finished = time.perf_counter()
    assert result.status == "ok" and result.text == "2\n", result.outputs
    PHASES["create_session"].append((created - started) * 1000)
    PHASES["first execute"].append((finished - created) * 1000)
    return (finished - started) * 1000, session


async def new_session_first_result(manager) -> float:
    ms, session = await started_session(manager)
    await session.close()
    return ms


async def warm_pool_refilled(manager) -> float:
    """Wait until the warm sessions are all started again; milliseconds waited."""
    started = time.perf_counter()
    while manager.warm_ready < manager.settings.sandbox_warm_sessions:
        await asyncio.sleep(0.01)
    return (time.perf_counter() - started) * 1000


async def burst(manager, size: int, closing: list) -> tuple[list[float], float]:
    """Start `size` sessions at once; they are closed in the background after the burst (a burst of
    new sessions is not one of closes), the tasks added to `closing`."""
    started = time.perf_counter()
    answers = await asyncio.gather(*(started_session(manager) for _ in range(size)))
    wall = (time.perf_counter() - started) * 1000
    closing += [asyncio.ensure_future(session.close()) for _, session in answers]
    return [ms for ms, _ in answers], wall


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
        walls, refills = [], []
        for _ in range(args.bursts):
            await warm_pool_refilled(manager)
            closing: list = []
            samples, wall = await burst(manager, args.burst, closing)
            concurrent += samples
            walls.append(wall)
            refills.append(await warm_pool_refilled(manager))
            await asyncio.gather(*closing)
        back_to_back: list[float] = []
        closing = []
        for _ in range(args.bursts):  # no pause: the warm sessions are used up by the first burst
            back_to_back += (await burst(manager, args.burst, closing))[0]
        await asyncio.gather(*closing)

    pipe = await asyncio.to_thread(time_pipe_first_result, max(args.baseline_runs, 10))
    jupyter = (await asyncio.to_thread(time_jupyter_first_result, args.baseline_runs)
               if jupyter_available() else None)

    print("New session to the first result of 1+1 (target: p50 <= 50 ms)")
    print(line("codeinterp session, one at a time", sequential))
    for name, values in phases.items():
        print(line(f"  of which {name}", values))
    print(line(f"codeinterp session, bursts of {args.burst} at once", concurrent))
    warm = manager.settings.sandbox_warm_sessions
    print(f"  {'':<46} whole burst of {args.burst}: p50 {percentile(walls, 50):.0f} ms; "
          f"{warm} warm sessions started again in p50 {percentile(refills, 50):.0f} ms")
    print(line(f"codeinterp session, bursts of {args.burst} back to back", back_to_back))
    print("Baselines (same run):")
    print(jupyter_line(jupyter))
    print(line("plain `python -c` pipe process (no isolation)", pipe))
    verdict = "met" if percentile(sequential, 50) <= 50 and percentile(concurrent, 50) <= 50 else "NOT met"
    sustained = "met" if percentile(back_to_back, 50) <= 50 else "NOT met"
    print(f"Target p50 <= 50 ms (one at a time and in a burst): {verdict}; "
          f"in bursts back to back (more than the warm sessions): {sustained}")


if __name__ == "__main__":
    run(main)

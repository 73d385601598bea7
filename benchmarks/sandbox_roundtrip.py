"""`1+1` round trip on a live sandbox session, beside a bare Jupyter kernel driven by
jupyter_client and a plain pipe-driven Python process, measured in the same run.
Target: p50 at most 1 ms.

    .venv/bin/python benchmarks/sandbox_roundtrip.py [--rounds 500]
"""

import argparse
import time

from sandbox_common import JupyterKernel, PipePython, jupyter_available, jupyter_line, line, percentile, run, sandbox_manager


def time_blocking(ask, rounds: int) -> list[float]:
    for _ in range(20):
        ask("1+1")
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = ask("1+1")
        samples.append((time.perf_counter() - started) * 1000)
        assert answer == "2", answer
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()

    async with sandbox_manager() as manager:
        session = await manager.create_session()
        for _ in range(20):
            await session.execute("1+1")
        sandbox = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            result = await session.execute("1+1")
            sandbox.append((time.perf_counter() - started) * 1000)
            assert result.text == "2\n", result.outputs

    pipe_process = PipePython()
    try:
        pipe = time_blocking(pipe_process.ask, args.rounds)
    finally:
        pipe_process.close()
    jupyter = None
    if jupyter_available():
        kernel = JupyterKernel()
        try:
            kernel.client.wait_for_ready(timeout=60)
            jupyter = time_blocking(kernel.ask, min(args.rounds, 300))
        finally:
            kernel.close()

    print("1+1 round trip on a live session (target: p50 <= 1 ms)")
    print(line("codeinterp session.execute", sandbox))
    print("Baselines (same run):")
    print(jupyter_line(jupyter))
    print(line("plain pipe-driven python (eval, no IPython)", pipe))
    print(f"Target p50 <= 1 ms: {'met' if percentile(sandbox, 50) <= 1 else 'NOT met'}")


if __name__ == "__main__":
    run(main)

"""Memory per sandbox session after heavy imports: PSS (/proc/<pid>/smaps_rollup) summed over each
session's processes once the cell has imported scikit-learn, SciPy, statsmodels, seaborn, plotly,
geopandas, OpenCV and torch (those the sandbox's environment has), and the time that cell took;
beside bare interpreters of the same environment with the same imports, in the same run. The warm
parent preimports only numpy, pandas and matplotlib, so these load on first import.

    .venv/bin/python benchmarks/sandbox_heavy_imports.py [--sessions 3] [--modules sklearn.ensemble,scipy.stats]
"""

import argparse
import asyncio
import statistics
import time

from sandbox_common import SANDBOX_PYTHON, PipePython, pss_kb, run, sandbox_manager, session_pids

HEAVY = ("sklearn.ensemble", "scipy.stats", "statsmodels.api", "seaborn", "plotly.express", "geopandas", "cv2",
         "torch")
CELL = """
import importlib
imported = []
for name in {modules!r}:
    try:
        importlib.import_module(name)
        imported.append(name)
    except ImportError:
        pass
' '.join(imported)
"""


def mb(kb: float) -> str:
    return f"{kb / 1024:7.1f} MB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--modules", default=",".join(HEAVY), help="comma-separated modules to import")
    args = parser.parse_args()
    cell = CELL.format(modules=tuple(args.modules.split(",")))

    async with sandbox_manager(sandbox_memory_mb=4096, sandbox_exec_timeout_seconds=600) as manager:
        sessions = [await manager.create_session() for _ in range(args.sessions)]
        seconds = []
        for session in sessions:
            started = time.perf_counter()
            result = await session.execute(cell)
            seconds.append(time.perf_counter() - started)
            imported = result.text.strip().strip("'")
        await asyncio.sleep(1)
        per_session = [sum(pss_kb(pid) for pid in session_pids(session)) for session in sessions]

    bare = [PipePython(str(SANDBOX_PYTHON)) for _ in range(args.sessions)]
    try:
        for process in bare:
            process.ask("exec(" + repr(cell) + ") or 1")
        time.sleep(1)
        bare_pss = [pss_kb(process.process.pid) for process in bare]
    finally:
        for process in bare:
            process.close()

    print(f"PSS per session after heavy imports ({args.sessions} sessions): {imported}")
    print(f"  codeinterp session                 mean {mb(statistics.fmean(per_session))}  max {mb(max(per_session))}"
          f"  import cell p50 {statistics.median(seconds) * 1000:.0f} ms")
    print("Baseline (same run):")
    print(f"  bare python with the same imports  mean {mb(statistics.fmean(bare_pss))}  max {mb(max(bare_pss))}")


if __name__ == "__main__":
    run(main)

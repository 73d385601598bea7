"""A corpus of programs written elsewhere, run in a sandbox and on the host, outcomes compared.

The corpus is the libraries' own test suites as their wheels ship them in the sandbox's
environment (pytest is in the sandbox's stack). Each module runs once inside a real bubblewrap
sandbox session (a cell starts `python -m pytest --pyargs MODULE` as a subprocess with /mnt/data
as its working directory) and once on the host with the same interpreter outside any sandbox
(in a temporary directory, with the sandbox's environment variables). Per test the outcomes
(passed, failed, error, skipped) are compared, and per module pytest's exit status.

    .venv/bin/python benchmarks/stack_corpus.py            # the default selection, a few minutes on 2 cores
    .venv/bin/python benchmarks/stack_corpus.py --all      # a larger selection
    .venv/bin/python benchmarks/stack_corpus.py --modules networkx.algorithms.shortest_paths
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(PROJECT / "src"))

# numpy's conftest.py imports hypothesis, which the stack does not ship: its tests run without it
# (and the few test modules that import hypothesis themselves fail to collect, on both sides).
NO_CONFTEST = ("--noconftest",)
DEFAULT = {"networkx.algorithms.shortest_paths": (), "numpy.linalg": NO_CONFTEST, "shapely.tests": (),
           "sklearn.preprocessing": (), "pandas.tests.frame": ()}
MORE = {"numpy.lib": NO_CONFTEST, "networkx.algorithms": (), "scipy.signal": (), "pandas.tests.io.excel": (),
        "statsmodels.regression": (), "scipy.linalg": (), "sklearn.linear_model": (), "sympy.polys": ()}
PYTEST = ("-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit2", "--continue-on-collection-errors")
HOST_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg"}  # HOME and TMPDIR: the run's own directory
CELL = """
import os, subprocess, sys
done = subprocess.run([sys.executable, "-m", "pytest", *{args!r}], cwd="/mnt/data",
                      env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True, text=True)
print("exit", done.returncode)
print(done.stdout[-3000:], done.stderr[-3000:])
"""


@dataclass
class ModuleRun:
    exit_status: int
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # test id -> (outcome, message)
    seconds: float = 0.0
    tail: str = ""


def pytest_args(module: str, extra: tuple[str, ...], junit_path: str) -> list[str]:
    return [*PYTEST, *extra, f"--junitxml={junit_path}", "--pyargs", module]


def parse_junit(xml: bytes) -> dict[str, tuple[str, str]]:
    """test id -> (outcome, first line of its message) from pytest's JUnit XML."""
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ElementTree.fromstring(xml).iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip().splitlines()[:1]
                message = message[0][:200] if message else ""
                break
        outcomes[test_id] = (outcome, message)
    return outcomes


def run_on_host(python: Path, module: str, extra: tuple[str, ...]) -> ModuleRun:
    with tempfile.TemporaryDirectory(prefix="codeinterp-corpus-") as directory:
        junit = Path(directory) / "junit.xml"
        started = time.monotonic()
        done = subprocess.run([str(python), "-m", "pytest", *pytest_args(module, extra, str(junit))], cwd=directory,
                              env={**HOST_ENV, "HOME": directory, "TMPDIR": directory}, capture_output=True, text=True)
        seconds = time.monotonic() - started
        outcomes = parse_junit(junit.read_bytes()) if junit.exists() else {}
        return ModuleRun(done.returncode, outcomes, seconds, (done.stdout + done.stderr)[-3000:])


async def run_in_sandbox(backend, module: str, extra: tuple[str, ...]) -> ModuleRun:
    from codeinterp.sandbox.interface import read_all

    session = await backend.create_session()
    try:
        started = time.monotonic()
        result = await session.execute(CELL.format(args=pytest_args(module, extra, "/mnt/data/junit.xml")))
        seconds = time.monotonic() - started
        printed = "".join(output.text for output in result.outputs if output.kind in ("stdout", "stderr", "error"))
        if result.status != "ok" or not printed.startswith("exit "):
            return ModuleRun(-1, {}, seconds, f"cell {result.status}: {printed[-3000:]}")
        try:
            outcomes = parse_junit(await read_all(session, "junit.xml"))
        except FileNotFoundError:
            outcomes = {}
        return ModuleRun(int(printed.split()[1]), outcomes, seconds, printed[-3000:])
    finally:
        await session.close()


def compare(module: str, host: ModuleRun, sandbox: ModuleRun) -> list[str]:
    """One line per difference, with the sandbox's (else the host's) message as its reason."""
    differences = []
    if host.exit_status != sandbox.exit_status:
        differences.append(f"{module}: pytest exit status {host.exit_status} on the host, {sandbox.exit_status} in the sandbox")
    for test_id in sorted(host.outcomes.keys() | sandbox.outcomes.keys()):
        on_host = host.outcomes.get(test_id, ("not run", ""))
        inside = sandbox.outcomes.get(test_id, ("not run", ""))
        if on_host[0] != inside[0]:
            reason = inside[1] or on_host[1]
            differences.append(f"{test_id}: host {on_host[0]}, sandbox {inside[0]} -- {reason}")
    return differences


def counts(outcomes: dict[str, tuple[str, str]]) -> str:
    tally: dict[str, int] = {}
    for outcome, _ in outcomes.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return ", ".join(f"{number} {outcome}" for outcome, number in sorted(tally.items())) or "nothing"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="the larger selection (tens of minutes on 2 cores)")
    parser.add_argument("--modules", help="comma-separated test packages or modules, instead of the selection")
    parser.add_argument("--json", type=Path, help="write every test's outcome on both sides to this file")
    args = parser.parse_args()
    selection = dict(DEFAULT, **MORE) if args.all else dict(DEFAULT)
    if args.modules:
        selection = {name: NO_CONFTEST if name.startswith("numpy") else () for name in args.modules.split(",")}

    from codeinterp.config import get_settings
    from codeinterp.sandbox import create_backend

    with tempfile.TemporaryDirectory(prefix="codeinterp-corpus-data-") as data_dir:
        # One test suite is one long cell. Suites size their big tests by the machine's free memory
        # (/proc/meminfo), not the session's limit: scipy.signal's test_large_array takes 4.3 GB, so
        # the session's limit is raised to 8 GB for the corpus (at 4 GB its kernel kills the suite).
        settings = get_settings().model_copy(update={
            "data_dir": Path(data_dir), "sandbox_warm_sessions": 0, "sandbox_exec_timeout_seconds": 3600.0,
            "sandbox_memory_mb": max(get_settings().sandbox_memory_mb, 8192),
            # numpy.lib's io tests fill a /tmp of the default 256 MB (then fail with ENOSPC).
            "sandbox_tmp_mb": max(get_settings().sandbox_tmp_mb, 4096)})
        python = settings.sandbox_env / "bin" / "python"
        backend = create_backend(settings)
        await backend.start()
        total = same = 0
        differences: list[str] = []
        report = {}
        try:
            for module, extra in selection.items():
                host = await asyncio.to_thread(run_on_host, python, module, extra)
                sandbox = await run_in_sandbox(backend, module, extra)
                found = compare(module, host, sandbox)
                tests = len(host.outcomes.keys() | sandbox.outcomes.keys())
                total += tests
                same += tests - sum(1 for line in found if not line.startswith(f"{module}: pytest exit"))
                differences += found
                print(f"{module}: {tests} tests; host {counts(host.outcomes)} (exit {host.exit_status}, "
                      f"{host.seconds:.0f} s); sandbox {counts(sandbox.outcomes)} (exit {sandbox.exit_status}, "
                      f"{sandbox.seconds:.0f} s); {len(found)} differences", flush=True)
                if not host.outcomes or not sandbox.outcomes:
                    print(f"  host said: {host.tail[-600:]}\n  sandbox said: {sandbox.tail[-600:]}")
                report[module] = {"host": {"exit": host.exit_status, "outcomes": host.outcomes},
                                  "sandbox": {"exit": sandbox.exit_status, "outcomes": sandbox.outcomes}}
        finally:
            await backend.stop()
    print(f"\n{len(selection)} test suites, {total} tests: {same} with the same outcome in the sandbox as on the host,"
          f" {len(differences)} differences")
    for line in differences:
        print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if not differences else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

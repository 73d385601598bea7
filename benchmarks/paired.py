"""Run one benchmark on this checkout and on an earlier commit, alternating, in the same minutes.

    .venv/bin/python benchmarks/paired.py --against 3a307ad [--rounds 3] [--against-env DIR] -- benchmarks/sandbox_roundtrip.py --rounds 500

The earlier commit is checked out (once) as a git worktree under /tmp and imported in place of
this checkout's `src/` through PYTHONPATH; both use this checkout's `.venv` and `.sandbox-env`
(the earlier side uses DIR instead with --against-env: another sandbox environment, such as
one built from the earlier commit's requirements).
The benchmark script itself is this checkout's, so both sides are measured the same way. Each
round runs the earlier commit, then this checkout; the VM's speed drifts by tens of percent over an
hour, so compare figures within a round. Prints each side's lines that carry figures.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
FIGURES = re.compile(r"p50|p99|PSS|MB|ms\b", re.IGNORECASE)


def worktree(revision: str) -> Path:
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=PROJECT, check=True,
                            capture_output=True, text=True).stdout.strip()
    path = Path("/tmp") / f"codeinterp-paired-{commit}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=PROJECT, check=True,
                       capture_output=True)
    return path


def run(side: str, src: Path, command: list[str], sandbox_env: Path = PROJECT / ".sandbox-env") -> None:
    env = {**os.environ, "PYTHONPATH": str(src), "CODEINTERP_SANDBOX_ENV": str(sandbox_env)}
    done = subprocess.run([sys.executable, *command], cwd=PROJECT, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if FIGURES.search(line)]
    for line in lines or [f"(no figures; exit {done.returncode}) {done.stderr.strip()[-300:]}"]:
        print(f"  {side:<10} {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against-env", type=Path, default=PROJECT / ".sandbox-env",
                        help="the sandbox environment for the earlier commit's side")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- benchmark script and its arguments")
    args = parser.parse_args()
    command = [part for part in args.command if part != "--"]
    earlier = worktree(args.against) / "src"
    for number in range(1, args.rounds + 1):
        print(f"round {number}")
        run(args.against, earlier, command, args.against_env)
        run("this", PROJECT / "src", command)


if __name__ == "__main__":
    main()

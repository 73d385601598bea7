"""The `remote` backend (a `codeinterp sandbox-host` process on loopback, over HTTP) beside the
local bubblewrap backend, in the same run: new session to the first result of `1+1`
(`create_session` + `execute`, one at a time) and the `1+1` round trip on a live session.

    .venv/bin/python benchmarks/sandbox_remote.py [--sessions 30] [--rounds 300] [--warm 5]

Both backends keep `--warm` sessions started ahead of demand (the host keeps its own).
"""

import argparse
import os
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from sandbox_common import PROJECT, line, run, sandbox_manager

CLI = PROJECT / ".venv" / "bin" / "codeinterp"
WARM_UP = 20


async def measure(manager, sessions: int, rounds: int) -> tuple[list[float], list[float]]:
    """(ms from asking for a session to its first `1+1` result, each; ms per `1+1` on a live session)"""
    starts = []
    for index in range(sessions + 1):
        started = time.perf_counter()
        session = await manager.create_session()
        result = await session.execute("1+1")
        if index:  # the first one warms up
            starts.append((time.perf_counter() - started) * 1000)
        assert result.text == "2\n", result.outputs
        await session.close()
    session = await manager.create_session()
    trips = []
    for index in range(WARM_UP + rounds):
        started = time.perf_counter()
        result = await session.execute("1+1")
        if index >= WARM_UP:
            trips.append((time.perf_counter() - started) * 1000)
        assert result.text == "2\n", result.outputs
    await session.close()
    return starts, trips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_host(data_dir: Path, secret: str, warm: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CODEINTERP_DATA_DIR": str(data_dir), "CODEINTERP_SANDBOX_HOST_SECRET": secret,
           "CODEINTERP_SANDBOX_WARM_SESSIONS": str(warm),
           "PYTHONPATH": os.environ.get("PYTHONPATH") or str(PROJECT / "src")}
    process = subprocess.Popen([str(CLI), "sandbox-host", "--listen", f"127.0.0.1:{port}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", headers={"Authorization": f"Bearer {secret}"}).json().get("ready"):
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sandbox host did not start")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warm", type=int, default=5)
    args = parser.parse_args()

    async with sandbox_manager(sandbox_warm_sessions=args.warm) as manager:
        local = await measure(manager, args.sessions, args.rounds)
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-host-") as host_dir:
        process, url = start_host(Path(host_dir), secret, args.warm)
        try:
            async with sandbox_manager(sandbox_backend="remote", sandbox_hosts=url,
                                       sandbox_host_secret=secret) as manager:
                remote = await measure(manager, args.sessions, args.rounds)
        finally:
            process.terminate()
            process.wait(30)

    print("New session to the first result of `1+1`, one at a time")
    print(line("local (bwrap) backend", local[0]))
    print(line("remote backend (one host on loopback, HTTP)", remote[0]))
    print("`1+1` round trip on a live session")
    print(line("local (bwrap) backend", local[1]))
    print(line("remote backend (one host on loopback, HTTP)", remote[1]))


if __name__ == "__main__":
    run(main)

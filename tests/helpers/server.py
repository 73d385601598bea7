"""A real `codeinterp serve` process for tests, on a free port with its own data directory."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "codeinterp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, tmp_path: Path, env: dict | None = None) -> None:
        self.tmp_path = Path(tmp_path)
        self.data_dir = self.tmp_path / "data"
        self.api_key = "sk-ci-test-" + secrets.token_hex(16)
        self.port = free_port()
        # A few warm sandbox sessions are enough for the tests and keep many servers cheap to start.
        self.env = {**os.environ, "CODEINTERP_DATA_DIR": str(self.data_dir), "CODEINTERP_API_KEY": self.api_key,
                    "CODEINTERP_SANDBOX_WARM_SESSIONS": "2", **(env or {})}
        self.log_path = self.tmp_path / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 60) -> "ServerProcess":
        command = [str(CLI) if CLI.exists() else sys.executable, *([] if CLI.exists() else ["-m", "codeinterp.cli"]),
                   "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not answer /healthz within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (graceful shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "ServerProcess":
        self.stop()
        return self.start()

    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run `codeinterp ARGS` against this server's data (same environment)."""
        command = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "codeinterp.cli"]
        return subprocess.run([*command, *args], env=self.env, cwd=self.tmp_path, capture_output=True, text=True,
                              check=True)

    def create_key(self, project: str) -> str:
        return self.run_cli("keys", "create", "--project", project).stdout.strip().splitlines()[-1]


# uvicorn's answer to a request it cannot parse (a raw space or control byte in the request line, an
# empty Content-Length, ...): refused before the application, so not in OpenAI's error shape.
UNPARSEABLE = "Invalid HTTP request received."


def start_server(tmp_path: Path, env: dict | None = None) -> ServerProcess:
    return ServerProcess(tmp_path, env).start()

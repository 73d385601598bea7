"""Real `codeinterp sandbox-host` processes on loopback, for the `remote` sandbox backend."""

import os
import secrets
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers.server import CLI, free_port

SECRET = "test-secret-" + secrets.token_hex(16)


class SandboxHostProcess:
    def __init__(self, tmp_path: Path, env: dict | None = None, tls: dict | None = None) -> None:
        """`tls`: {"ca": ..., "cert": ..., "key": ...} for a host that serves mTLS (the client's certificate)."""
        self.tmp_path = Path(tmp_path)
        self.tls = tls
        self.port = free_port()
        self.env = {**os.environ, "CODEINTERP_DATA_DIR": str(self.tmp_path / "data"),
                    "CODEINTERP_SANDBOX_HOST_SECRET": SECRET, "CODEINTERP_SANDBOX_WARM_SESSIONS": "1", **(env or {})}
        self.log_path = self.tmp_path / "sandbox-host.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _get(self, path: str, timeout: float) -> httpx.Response:
        verify = True
        if self.tls:
            verify = ssl.create_default_context(cafile=str(self.tls["ca"]))
            verify.load_cert_chain(str(self.tls["cert"]), str(self.tls["key"]))
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {SECRET}"}, timeout=timeout,
                         verify=verify)

    def start(self, timeout: float = 60) -> "SandboxHostProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(CLI), "sandbox-host", "--listen", f"127.0.0.1:{self.port}"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox host exited with {self.proc.returncode}:\n{self.log()}")
            try:
                answer = self._get("/health", timeout=1)
                if answer.status_code == 200 and answer.json()["ready"]:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"sandbox host did not become ready within {timeout}s:\n{self.log()}")

    def health(self) -> dict:
        return self._get("/health", timeout=5).json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: the host dies at once (its sandboxes die with it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_hosts(tmp_path_factory, count: int = 2, env: dict | None = None) -> list[SandboxHostProcess]:
    hosts = []
    try:
        for _ in range(count):
            hosts.append(SandboxHostProcess(tmp_path_factory.mktemp("sandbox-host"), env).start())
    except BaseException:
        for host in hosts:
            host.stop()
        raise
    return hosts


def remote_settings(hosts: list[SandboxHostProcess]) -> dict:
    """Settings (as keyword arguments) for a `remote` backend over these hosts."""
    return {"sandbox_backend": "remote", "sandbox_hosts": ",".join(h.url for h in hosts),
            "sandbox_host_secret": SECRET}

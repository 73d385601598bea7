"""What the runs benchmarks share: a real `codeinterp serve` process on a temporary data
directory, the scripted upstream model from the tests (answering at once), and percentiles."""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.upstream import ScriptedUpstream  # noqa: E402

API_KEY = "bench-key"
MODEL = "scripted-model"


def one_cell_model(code: str):
    """An upstream turn (a callable) for runs of one cell: the model calls `python(code)`, and
    once the tool's output is back, answers with a short text."""
    def answer(body: dict) -> dict:
        if body["messages"] and body["messages"][-1].get("role") == "tool":
            return {"text": "Done."}
        return {"tool_calls": [{"name": "python", "arguments": {"code": code}}]}
    return answer


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  "
            f"p99 {percentile(ms, 99):7.1f} ms  mean {statistics.mean(ms):7.1f} ms  (n={len(ms)})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`codeinterp serve` on a free port with its own data directory and the scripted upstream."""

    def __init__(self, upstream: ScriptedUpstream, extra_env: dict | None = None) -> None:
        self.data_dir = tempfile.TemporaryDirectory(prefix="codeinterp-bench-")
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}/v1"
        # Other CODEINTERP_* settings pass through (e.g. CODEINTERP_DATABASE_URL to measure PostgreSQL).
        env = dict(os.environ, CODEINTERP_DATA_DIR=self.data_dir.name, CODEINTERP_API_KEY=API_KEY,
                   CODEINTERP_MODEL_BASE_URL=upstream.base_url, **(extra_env or {}))
        env.pop("CODEINTERP_MODEL_API_KEY", None)
        self.log = open(Path(self.data_dir.name) / "server.log", "wb")
        self.process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "codeinterp"), "serve", "--host", "127.0.0.1",
                                         "--port", str(port)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {(Path(self.data_dir.name) / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.base_url}/assistants", headers=self.headers, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not start within a minute")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.data_dir.cleanup()

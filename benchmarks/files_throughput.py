"""Upload and download a large file through a real server; print MB/s and the server's peak memory.

    .venv/bin/python benchmarks/files_throughput.py [--size-mb 512]

Baseline in the same run: `cp` of the same file on the same disk (and `cp` followed by `sync`,
since the server fsyncs each upload before answering).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.server import start_server  # noqa: E402


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Samples VmRSS every 10 ms; `.peak_kb` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.running = pid, 0, True

    def run(self) -> None:
        while self.running:
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            time.sleep(0.01)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak_kb


def make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for n in range(size_mb):
            f.write(block[n % 7:] + block[: n % 7])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=512)
    args = parser.parse_args()
    size_mb = args.size_mb
    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp = Path(tmp)
        source = tmp / "payload.csv"
        make_file(source, size_mb)

        cp_seconds = timed(lambda: subprocess.run(["cp", source, tmp / "copy1.csv"], check=True))
        cp_sync_seconds = timed(lambda: (subprocess.run(["cp", source, tmp / "copy2.csv"], check=True),
                                         subprocess.run(["sync", "-f", str(tmp / "copy2.csv")], check=True)))
        (tmp / "copy1.csv").unlink()
        (tmp / "copy2.csv").unlink()

        (tmp / "server").mkdir()
        server = start_server(tmp / "server")
        try:
            idle_kb = status_kb(server.pid, "VmRSS")
            headers = {"Authorization": f"Bearer {server.api_key}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as http:
                sampler = RssSampler(server.pid)
                sampler.start()
                result = {}

                def upload() -> None:
                    with open(source, "rb") as f:
                        r = http.post("/files", data={"purpose": "assistants"}, files={"file": (source.name, f)})
                    r.raise_for_status()
                    result.update(r.json())

                upload_seconds = timed(upload)
                upload_peak_kb = sampler.stop()
                assert result["bytes"] == size_mb * 1024 * 1024, result

                sampler = RssSampler(server.pid)
                sampler.start()
                received = tmp / "downloaded.csv"

                def download() -> None:
                    with http.stream("GET", f"/files/{result['id']}/content") as r, open(received, "wb") as out:
                        r.raise_for_status()
                        for chunk in r.iter_raw(1024 * 1024):
                            out.write(chunk)

                download_seconds = timed(download)
                download_peak_kb = sampler.stop()
                assert received.stat().st_size == source.stat().st_size
            hwm_kb = status_kb(server.pid, "VmHWM")
        finally:
            server.stop()
            shutil.rmtree(tmp / "server", ignore_errors=True)

    mb = float(size_mb)
    print(f"file size                       {size_mb} MB")
    print(f"baseline cp                     {mb / cp_seconds:8.1f} MB/s  ({cp_seconds:.2f} s)")
    print(f"baseline cp + sync              {mb / cp_sync_seconds:8.1f} MB/s  ({cp_sync_seconds:.2f} s)")
    print(f"upload   POST /v1/files         {mb / upload_seconds:8.1f} MB/s  ({upload_seconds:.2f} s)")
    print(f"download GET /v1/files/ID/content {mb / download_seconds:6.1f} MB/s  ({download_seconds:.2f} s)")
    print(f"server RSS idle                 {idle_kb / 1024:8.1f} MB")
    print(f"server RSS peak during upload   {upload_peak_kb / 1024:8.1f} MB")
    print(f"server RSS peak during download {download_peak_kb / 1024:8.1f} MB")
    print(f"server VmHWM (lifetime peak)    {hwm_kb / 1024:8.1f} MB")


if __name__ == "__main__":
    main()

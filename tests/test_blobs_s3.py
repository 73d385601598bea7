"""Blobs in an S3-compatible bucket (moto in server mode, its own process): the Files API through the
official SDK, a large file byte-exact with flat server memory, and kill -9 during an upload."""

import hashlib
import time

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.helpers.s3 import MotoServer
from tests.helpers.server import start_server
from tests.helpers.slow_upload import start_slow_upload
from tests.test_files import upload
from tests.test_runs import wait_for

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto):
    return moto.new_bucket()


def local_blobs(proc) -> list[str]:
    root = proc.data_dir / "blobs"
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_files_api_on_s3(tmp_path, bucket, database_env):
    proc = start_server(tmp_path, env={**bucket.server_env, **database_env, "CODEINTERP_MAX_UPLOAD_BYTES": "100000"})
    try:
        with make_client(proc) as client:
            created = upload(client, "sales.csv", b"region,total\nnorth,10\n")
            other = upload(client, "données é.txt", "hé".encode(), purpose="user_data")
            assert client.files.retrieve(created.id) == created
            content = client.files.content(created.id)
            assert content.read() == b"region,total\nnorth,10\n"
            assert content.response.headers["content-type"].startswith("text/csv")
            assert content.response.headers["content-length"] == str(created.bytes)
            named = client.files.content(other.id)
            assert named.read() == "hé".encode()
            assert "filename*=utf-8''donn%C3%A9es%20%C3%A9.txt" in named.response.headers["content-disposition"]
            assert [f.id for f in client.files.list()] == [other.id, created.id]
            assert bucket.keys() == {created.id, other.id}

            with pytest.raises(openai.APIStatusError) as err:
                upload(client, "big.csv", b"x" * 100_001)
            assert err.value.status_code == 413

            assert client.files.delete(created.id).deleted
            with pytest.raises(openai.NotFoundError):
                client.files.content(created.id)
            assert bucket.keys() == {other.id}
            assert local_blobs(proc) == []  # nothing went to the data directory
        # ready once the sandboxes' parent has started too
        ready = wait_for(lambda: (r := httpx.get(proc.url + "/readyz")).status_code == 200 and r, timeout=120)
        assert ready.json()["checks"]["blobs"] == "ok"
    finally:
        proc.stop()


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (VmHWM)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def resident(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


SIZE = 200 * MiB
PEAK_GROWTH_LIMIT = 64 * MiB


@pytest.mark.slow
@pytest.mark.parametrize("store", ["s3", "local"])
def test_large_file_round_trip_in_flat_memory(tmp_path, moto, store):
    env = moto.new_bucket().server_env if store == "s3" else {}
    proc = start_server(tmp_path, env={**env, "CODEINTERP_MAX_UPLOAD_BYTES": str(SIZE)})
    try:
        headers = {"Authorization": f"Bearer {proc.api_key}"}
        httpx.get(proc.base_url + "/files", headers=headers).raise_for_status()  # warm the request path
        before = resident(proc.pid)
        sent = hashlib.sha256()

        def body():
            yield (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
                   b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n')
            for n in range(SIZE // MiB):
                chunk = n.to_bytes(4, "big") * (MiB // 4)
                sent.update(chunk)
                yield chunk
            yield b"\r\n--B--\r\n"

        r = httpx.post(proc.base_url + "/files", content=body(), timeout=300,
                       headers={**headers, "Content-Type": "multipart/form-data; boundary=B"})
        assert r.status_code == 200, r.text
        file_id = r.json()["id"]
        assert r.json()["bytes"] == SIZE
        received = hashlib.sha256()
        with httpx.stream("GET", f"{proc.base_url}/files/{file_id}/content", headers=headers, timeout=300) as got:
            assert got.status_code == 200
            for chunk in got.iter_bytes():
                received.update(chunk)
        assert received.digest() == sent.digest()
        growth = peak_rss(proc.pid) - before
        print(f"{store}: {SIZE // MiB} MiB up and down, server peak RSS grew {growth / MiB:.1f} MiB")
        assert growth < PEAK_GROWTH_LIMIT
    finally:
        proc.stop()


def test_kill_during_upload_leaves_nothing_and_orphans_are_swept(tmp_path, bucket):
    proc = start_server(tmp_path, env=bucket.server_env)
    try:
        with make_client(proc) as client:
            done = {upload(client, f"done{n}.csv", bytes([n]) * 300_000).id for n in range(3)}
            uploader, sent = start_slow_upload(proc, chunks=400, timeout=120)
            assert sent.wait(60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not bucket.unfinished_uploads():
                time.sleep(0.05)
            assert bucket.unfinished_uploads() == 1  # mid-upload: parts sent, nothing complete
            proc.kill()
            uploader.join(60)

            # An orphan (a blob whose row was never written) and an upload complete but never renamed
            bucket.put("file-orphan", b"no row")
            bucket.put("tmp/upload-cut", b"never renamed")
            proc.start()
            assert {f.id for f in client.files.list()} == done
            assert bucket.keys() == done  # the unfinished multipart upload never became an object
            for file_id in done:
                assert len(client.files.content(file_id).read()) == 300_000

            # while serving, orphans older than the grace period are swept periodically
            proc.env.update(CODEINTERP_BLOB_SWEEP_INTERVAL_SECONDS="1", CODEINTERP_BLOB_ORPHAN_GRACE_SECONDS="0")
            proc.restart()
            bucket.put("file-orphan-later", b"no row")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and bucket.keys() != done:
                time.sleep(0.2)
            assert bucket.keys() == done
            assert {f.id for f in client.files.list()} == done
    finally:
        proc.stop()

"""kill -9 during an upload and during deletes: after a restart, completed files are intact and
listed, and no half file is listed or left on disk."""

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.helpers.server import start_server
from tests.helpers.slow_upload import start_slow_upload


def on_disk(proc) -> tuple[set[str], list]:
    blobs = proc.data_dir / "blobs"
    return {p.name for p in blobs.iterdir() if p.is_file()}, list((blobs / "tmp").iterdir())


def assert_consistent(client, proc, expected: dict[str, bytes]) -> None:
    """Exactly `expected` (id -> content) is listed, readable and on disk; nothing else."""
    listed = {f.id for f in client.files.list()}
    assert listed == set(expected)
    for file_id, content in expected.items():
        assert hashlib.sha256(client.files.content(file_id).read()).digest() == hashlib.sha256(content).digest()
        assert client.files.retrieve(file_id).bytes == len(content)
    blobs, temporary = on_disk(proc)
    assert blobs == set(expected)
    assert temporary == []


def test_kill_during_slow_upload(tmp_path):
    proc = start_server(tmp_path)
    try:
        with make_client(proc) as client:
            done = {}
            for n in range(3):
                data = bytes([n]) * (200_000 + n)
                done[client.files.create(file=(f"done{n}.csv", data), purpose="assistants").id] = data

            uploader, sent = start_slow_upload(proc, chunks=200, timeout=60)
            assert sent.wait(60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(p.stat().st_size > 500_000 for p in on_disk(proc)[1]):
                time.sleep(0.05)
            _, temporary = on_disk(proc)
            assert len(temporary) == 1 and temporary[0].stat().st_size > 500_000  # mid-upload
            proc.kill()
            uploader.join(30)

            proc.start()
            assert_consistent(client, proc, done)
            # the server still takes uploads after the crash
            again = client.files.create(file=("after.txt", b"after"), purpose="assistants")
            assert client.files.content(again.id).read() == b"after"
    finally:
        proc.stop()


def test_kill_during_deletes(tmp_path):
    proc = start_server(tmp_path)
    try:
        with make_client(proc) as client:
            files = {}
            for n in range(40):
                data = f"file {n}\n".encode() * (1000 + n)
                files[client.files.create(file=(f"f{n}.txt", data), purpose="assistants").id] = data
            keep = dict(list(files.items())[:4])
            doomed = list(files)[4:]
            answered, unanswered = threading.Semaphore(0), []

            def delete(file_id):
                try:
                    client.files.delete(file_id)
                    answered.release()
                except openai.APIConnectionError as error:
                    # sent, and the server died before answering (not: refused before it was sent)
                    if not isinstance(error.__cause__, httpx.ConnectError):
                        unanswered.append(file_id)

            with ThreadPoolExecutor(8) as pool:
                for file_id in doomed:
                    pool.submit(delete, file_id)
                for _ in range(4):  # deletes are flowing: kill the server under the next ones
                    assert answered.acquire(timeout=60)
                proc.kill()
            assert unanswered, "no delete was in flight when the server died"

            proc.start()
            survivors = {f.id for f in client.files.list()}
            assert set(keep) <= survivors
            # every file is either whole (listed, readable, on disk) or gone (404, no blob)
            assert_consistent(client, proc, {i: files[i] for i in survivors})
            for file_id in set(doomed) - survivors:
                with pytest.raises(openai.NotFoundError):
                    client.files.retrieve(file_id)
            for file_id in survivors - set(keep):
                client.files.delete(file_id)
            assert_consistent(client, proc, keep)
    finally:
        proc.stop()

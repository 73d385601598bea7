"""The blob store: file bytes under names, on obstore, in a local directory (the default) or an
S3-compatible bucket (`CODEINTERP_BLOB_URL=s3://bucket/prefix`).

An upload is written under `tmp/` and renamed to its name when complete; a copy whose name is
known is written under that name. Either way the object appears only whole: a local write goes to
a hidden staging file renamed at the end, an S3 write is a multipart upload that no one sees until
it completes. Rows are inserted only after the object is complete and deleted before it, so a
crash leaves at most an unfinished upload or an orphan, which `sweep` removes once it is older
than a grace period (uploads of this or another replica may be in flight under younger names).
"""

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import obstore
from obstore.store import LocalStore, from_url

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
TMP = "tmp/"
# Parts held in memory per write: one being filled plus those being sent. S3 parts are at least 5 MiB.
LOCAL_PART_BYTES = 1024 * 1024
S3_PART_BYTES = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 2
STAGING_FILE = re.compile(r"#\d+$")  # obstore's LocalStore writes NAME#N, then renames it to NAME


class BlobTooLarge(ValueError):
    """A source held more bytes than the copy allowed."""


def _check_name(name: str) -> str:
    if "/" in name or "#" in name or name in ("", ".", "..", "tmp"):
        raise ValueError(f"bad blob name {name!r}")
    return name


class BlobWriter:
    """An upload in progress under `tmp/`: `await write(data)`, then `await commit(name)` makes it
    `name`, or `await discard()` drops it."""

    def __init__(self, store: "BlobStore") -> None:
        self.store = store
        self.key = f"{TMP}upload-{uuid.uuid4().hex}"
        self._file = store.open_async(self.key)
        self.size = 0

    async def write(self, data: bytes) -> None:
        await self._file.write(data)
        self.size += len(data)

    async def commit(self, name: str) -> None:
        await self._file.close()
        self._file = None
        await self.store.rename(self.key, _check_name(name))

    async def discard(self) -> None:
        if self._file is not None:
            self._file = None  # an unfinished write is dropped, never completed
        else:
            await self.store.delete_async(self.key)


@dataclass(frozen=True)
class StoredBlob:
    """A blob that exists: read it with `chunks()`."""
    store: "BlobStore"
    name: str
    size: int

    def chunks(self) -> AsyncIterator[bytes]:
        return self.store.chunks(self.name)


async def read_chunks(source: "StoredBlob | Path") -> AsyncIterator[bytes]:
    """A stored blob (or a file on disk) as a stream of byte chunks."""
    if isinstance(source, StoredBlob):
        async for chunk in source.chunks():
            yield chunk
        return
    f = await asyncio.to_thread(open, source, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


class BlobStore:
    """`BlobStore(root)` for a local directory, `BlobStore.from_url("s3://bucket/prefix")` for a bucket."""

    def __init__(self, root: Path | None = None, store=None, description: str | None = None) -> None:
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
            store = LocalStore(self.root)
        self.store = store
        self.description = description or str(self.root)
        self.part_bytes = LOCAL_PART_BYTES if self.root is not None else S3_PART_BYTES

    @classmethod
    def from_url(cls, url: str, endpoint: str | None = None) -> "BlobStore":
        """A bucket named by URL (s3://bucket/prefix); credentials, region and endpoint come from
        the usual AWS_* variables, or `endpoint`. Plain http is allowed when the endpoint uses it."""
        if url.startswith("file://"):
            return cls(Path(url.removeprefix("file://")))
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options = {"allow_http": True} if endpoint and endpoint.startswith("http://") else None
        config = {"endpoint": endpoint} if endpoint else {}
        return cls(store=from_url(url, client_options=options, **config), description=url)

    # ---- writes ----------------------------------------------------------------------------

    def open_async(self, key: str):
        return obstore.open_writer_async(self.store, key, buffer_size=self.part_bytes,
                                         max_concurrency=PARTS_IN_FLIGHT)

    def open_writer(self) -> BlobWriter:
        return BlobWriter(self)

    async def rename(self, key: str, name: str) -> None:
        await obstore.rename_async(self.store, key, name)
        await asyncio.to_thread(self._sync_to_disk, name)

    async def put_bytes(self, name: str, data: bytes) -> int:
        await obstore.put_async(self.store, _check_name(name), data, use_multipart=False)
        await asyncio.to_thread(self._sync_to_disk, name)
        return len(data)

    def write_bytes(self, name: str, data: bytes) -> int:
        obstore.put(self.store, _check_name(name), data, use_multipart=False)
        self._sync_to_disk(name)
        return len(data)

    def copy_from(self, name: str, source: Path | BinaryIO, max_bytes: int | None = None) -> int:
        """Store a file on disk, or what is left to read of an open file (which is closed). With
        `max_bytes`, a source holding more raises BlobTooLarge and nothing is stored (a file that
        grows while it is copied cannot pass its budget). Blocking: call it from a thread."""
        writer = obstore.open_writer(self.store, _check_name(name), buffer_size=self.part_bytes,
                                     max_concurrency=PARTS_IN_FLIGHT)
        size = 0
        with open(source, "rb") if isinstance(source, Path) else source as f:
            while chunk := f.read(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    del writer  # dropped unfinished: nothing is stored
                    raise BlobTooLarge(f"the source holds more than {max_bytes} bytes")
                writer.write(chunk)
        writer.close()
        self._sync_to_disk(name)
        return size

    async def copy_from_stream(self, name: str, chunks: AsyncIterable[bytes], max_bytes: int | None = None) -> int:
        """Store a stream of byte chunks. With `max_bytes`, a stream holding more raises BlobTooLarge
        and nothing is stored."""
        writer = self.open_async(_check_name(name))
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(f"the source holds more than {max_bytes} bytes")
                await writer.write(chunk)
            await writer.close()
        finally:
            del writer  # on error: dropped unfinished, nothing is stored
            if hasattr(chunks, "aclose"):  # a generator stopped early lets go of its source now
                await chunks.aclose()
        await asyncio.to_thread(self._sync_to_disk, name)
        return size

    def _sync_to_disk(self, name: str) -> None:
        """In a local directory, the blob and its directory entry reach the disk before its row is written."""
        if self.root is None:
            return
        for path, flags in ((self.root / name, os.O_RDONLY), (self.root, os.O_RDONLY)):
            fd = os.open(path, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # ---- reads -----------------------------------------------------------------------------

    async def stat(self, name: str) -> StoredBlob | None:
        try:
            meta = await obstore.head_async(self.store, _check_name(name))
        except FileNotFoundError:
            return None
        return StoredBlob(self, name, meta["size"])

    async def chunks(self, name: str) -> AsyncIterator[bytes]:
        result = await obstore.get_async(self.store, _check_name(name))
        async for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    def names(self) -> list[str]:
        """The stored blobs' names (not the unfinished uploads)."""
        return [m["path"] for batch in obstore.list(self.store) for m in batch if "/" not in m["path"]]

    async def check(self) -> None:
        """Raises when the store cannot be reached (or the credentials are refused)."""
        await obstore.list_with_delimiter_async(self.store, prefix=TMP)

    # ---- deletes ---------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        try:
            obstore.delete(self.store, name)
        except FileNotFoundError:
            pass

    async def delete_async(self, name: str) -> None:
        try:
            await obstore.delete_async(self.store, name)
        except FileNotFoundError:
            pass

    async def sweep(self, known: Callable[[list[str]], Awaitable[Iterable[str]]], older_than: float = 0) -> int:
        """Remove unfinished uploads, and blobs whose name `known` does not return, last written
        more than `older_than` seconds ago. Returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        async for batch in obstore.list(self.store, chunk_size=500):
            old = [m["path"] for m in batch if m["last_modified"].timestamp() <= cutoff]
            names = [p for p in old if "/" not in p]
            kept = set(await known(names))
            doomed = [p for p in old if p.startswith(TMP)] + [n for n in names if n not in kept]
            for path in doomed:
                if not path.startswith(TMP):
                    log.info("removing orphan blob %s", path)
                await self.delete_async(path)
            removed += len(doomed)
        if self.root is not None:
            removed += await asyncio.to_thread(self._sweep_staging_files, cutoff)
        return removed

    def _sweep_staging_files(self, cutoff: float) -> int:
        """A local write cut off by a crash leaves a staging file that listing does not show."""
        removed = 0
        for directory in (self.root, self.root / "tmp"):
            for p in directory.iterdir():
                if STAGING_FILE.search(p.name) and p.is_file() and p.stat().st_mtime <= cutoff:
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

"""The blob store: file bytes in a local directory, one file per object id.

Writes go to `tmp/` first, are fsynced, then renamed into place, so a blob is either
whole or absent. Rows are inserted only after the rename and deleted before the blob,
so a crash leaves at most an orphan blob, which `sweep` removes on the next start.
"""

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class BlobTooLarge(ValueError):
    """A source held more bytes than the copy allowed."""


class BlobWriter:
    """An open temporary blob; `commit(name)` makes it permanent, `discard()` removes it."""

    def __init__(self, store: "BlobStore") -> None:
        self.store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def commit(self, name: str) -> Path:
        """fsync and rename into place (blocking: call from a thread for large blobs)."""
        os.fsync(self.file.fileno())
        self.file.close()
        final = self.store.path(name)
        os.replace(self.path, final)
        self.store.sync_dir()
        return final

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """A file on disk as a stream of byte chunks (read in a thread, a chunk at a time)."""
    source = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk
    finally:
        source.close()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if "/" in name or name in ("", ".", "..", "tmp"):
            raise ValueError(f"bad blob name {name!r}")
        return self.root / name

    def open_writer(self) -> BlobWriter:
        return BlobWriter(self)

    def write_bytes(self, name: str, data: bytes) -> int:
        writer = self.open_writer()
        try:
            writer.write(data)
            writer.commit(name)
        except BaseException:
            writer.discard()
            raise
        return writer.size

    def copy_from(self, name: str, source: Path | BinaryIO, max_bytes: int | None = None) -> int:
        """Store a file on disk, or what is left to read of an open file (which is closed). With
        `max_bytes`, a source holding more raises BlobTooLarge and nothing is stored (a file that
        grows while it is copied cannot pass its budget)."""
        writer = self.open_writer()
        try:
            with open(source, "rb") if isinstance(source, Path) else source as f:
                if max_bytes is None:
                    shutil.copyfileobj(f, writer.file, CHUNK)
                else:
                    left = max_bytes
                    while chunk := f.read(min(CHUNK, left + 1)):
                        left -= len(chunk)
                        if left < 0:
                            raise BlobTooLarge(f"the source holds more than {max_bytes} bytes")
                        writer.file.write(chunk)
            writer.size = os.fstat(writer.file.fileno()).st_size
            writer.commit(name)
        except BaseException:
            writer.discard()
            raise
        return writer.size

    async def copy_from_stream(self, name: str, chunks: AsyncIterable[bytes], max_bytes: int | None = None) -> int:
        """Store a stream of byte chunks. With `max_bytes`, a stream holding more raises BlobTooLarge
        and nothing is stored."""
        writer = await asyncio.to_thread(self.open_writer)
        try:
            async for chunk in chunks:
                if max_bytes is not None and writer.size + len(chunk) > max_bytes:
                    raise BlobTooLarge(f"the source holds more than {max_bytes} bytes")
                await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit, name)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        finally:
            if hasattr(chunks, "aclose"):  # a generator stopped early lets go of its source now
                await chunks.aclose()
        return writer.size

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def sync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def names(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if p.is_file()]

    def sweep(self, known: Iterable[str]) -> int:
        """Remove temporary files and blobs whose name is not in `known`. Returns how many."""
        removed = 0
        for p in self.tmp_dir.iterdir():
            p.unlink(missing_ok=True)
            removed += 1
        keep = set(known)
        for name in self.names():
            if name not in keep:
                log.info("removing orphan blob %s", name)
                self.delete(name)
                removed += 1
        return removed

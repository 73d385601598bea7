"""Files: the `files` table, the blob store that holds their bytes, and the service functions."""

import asyncio
import mimetypes
from collections.abc import AsyncIterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import BigInteger, Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.config import get_settings
from codeinterp.store.blobs import BlobStore, StoredBlob
from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest, NotFound, QuotaExceeded
from codeinterp.store.ids import new_id, next_sequence, now
from codeinterp.store.ownership import get_owned
from codeinterp.store.pagination import PageQuery, paginate
from codeinterp.store.projects import Project

# OpenAI's table of file types the code interpreter supports (extension -> MIME type).
SUPPORTED_TYPES: dict[str, str] = {
    ".c": "text/x-c",
    ".cs": "text/x-csharp",
    ".cpp": "text/x-c++",
    ".csv": "text/csv",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".java": "text/x-java",
    ".json": "application/json",
    ".md": "text/markdown",
    ".pdf": "application/pdf",
    ".php": "text/x-php",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".py": "text/x-python",
    ".rb": "text/x-ruby",
    ".tex": "text/x-tex",
    ".txt": "text/plain",
    ".css": "text/css",
    ".js": "text/javascript",
    ".sh": "application/x-sh",
    ".ts": "application/typescript",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".pkl": "application/octet-stream",
    ".png": "image/png",
    ".tar": "application/x-tar",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xml": "application/xml",
    ".zip": "application/zip",
}
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
OUTPUT_PURPOSE = "assistants_output"
LISTED_PURPOSES = ("assistants", "assistants_output", "batch", "batch_output", "fine-tune", "fine-tune-results",
                   "vision", "user_data")


class File(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    filename: Mapped[str] = mapped_column(String(1024))
    bytes: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="processed")
    mime_type: Mapped[str] = mapped_column(String(255))


_blob_store: BlobStore | None = None


def configure_blobs(blob_dir: Path, url: str | None = None, endpoint: str | None = None) -> BlobStore:
    """The blob store: the bucket at `url` when given, else the local directory `blob_dir`."""
    global _blob_store
    _blob_store = BlobStore.from_url(url, endpoint) if url else BlobStore(blob_dir)
    return _blob_store


def blob_store() -> BlobStore:
    if _blob_store is None:
        settings = get_settings()
        return configure_blobs(settings.blob_dir, settings.blob_url, settings.blob_endpoint)
    return _blob_store


def mime_type_for(filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in SUPPORTED_TYPES:
        return SUPPORTED_TYPES[suffix]
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def check_upload(filename: str, purpose: str) -> None:
    if purpose == "evals":
        raise InvalidRequest("Purpose 'evals' is not supported by this server (it serves no Evals API).",
                             param="purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(f"'{purpose}' is not one of {list(UPLOAD_PURPOSES)} - 'purpose'", param="purpose")
    if not filename:
        raise InvalidRequest("The uploaded file has no file name.", param="file")
    if len(filename) > MAX_FILENAME_CHARS or not filename.isprintable():
        raise InvalidRequest(f"The file name must be printable and at most {MAX_FILENAME_CHARS} characters.",
                             param="file")
    suffix = PurePosixPath(filename).suffix.lower()
    extra = get_settings().extra_upload_extensions
    if purpose == "assistants" and suffix not in SUPPORTED_TYPES and suffix not in extra:
        supported = ", ".join(f"'{ext[1:]}'" for ext in [*SUPPORTED_TYPES, *sorted(extra)])
        raise InvalidRequest(
            f"Invalid extension {suffix[1:] or '(none)'}. Supported formats: {supported}", param="file")


def file_to_dict(row: File) -> dict:
    data = {"id": row.id, "object": "file", "bytes": row.bytes, "created_at": row.created_at,
            "filename": row.filename, "purpose": row.purpose, "status": row.status}
    if row.expires_at is not None:
        data["expires_at"] = row.expires_at
    return data


async def add_file_row(session: AsyncSession, file_id: str, project_id: str, filename: str, size: int,
                       purpose: str, expires_after: int | None = None) -> File:
    created_at = now()
    row = File(id=file_id, project_id=project_id, sequence=next_sequence(), created_at=created_at,
               expires_at=None if expires_after is None else created_at + expires_after,
               filename=filename, bytes=size, purpose=purpose, status="processed", mime_type=mime_type_for(filename))
    session.add(row)
    await session.flush()
    return row


async def storage_used(session: AsyncSession, project_id: str, lock: bool = False) -> int:
    """The bytes of the project's files and of its containers' own files. With `lock`, the project's row is locked until the
    transaction ends (on PostgreSQL; SQLite runs one writer at a time anyway), so that two
    writers cannot both pass the quota."""
    from codeinterp.store.containers import ContainerFile  # (it imports this module)

    if lock:
        await session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    files = (await session.execute(select(func.coalesce(func.sum(File.bytes), 0))
                                   .where(File.project_id == project_id))).scalar_one()
    own = (await session.execute(select(func.coalesce(func.sum(ContainerFile.bytes), 0)).where(
        ContainerFile.project_id == project_id, ContainerFile.file_id.is_(None)))).scalar_one()
    return int(files) + int(own)


async def add_file_row_within_quota(session: AsyncSession, file_id: str, project_id: str, filename: str, size: int,
                                    purpose: str, quota_bytes: int, expires_after: int | None = None) -> File:
    """`add_file_row`, unless the project's files would then pass `quota_bytes` (QuotaExceeded);
    checked when the row is written, so concurrent writers cannot pass it together."""
    if await storage_used(session, project_id, lock=True) + size > quota_bytes:
        raise QuotaExceeded(quota_bytes)
    return await add_file_row(session, file_id, project_id, filename, size, purpose, expires_after)


async def store_blob(data: bytes | Path | BinaryIO | AsyncIterable[bytes],
                     max_bytes: int | None = None) -> tuple[str, int]:
    """Store bytes (or a file on disk, an open file, which is closed, or a stream of byte chunks)
    under a new file id, before its row is added with `add_file_row`: (file id, size). A source
    holding more than `max_bytes` raises BlobTooLarge."""
    file_id = new_id("file")
    store = blob_store()
    if isinstance(data, (bytes, bytearray, memoryview)):
        size = await store.put_bytes(file_id, bytes(data))
    elif isinstance(data, AsyncIterable):
        size = await store.copy_from_stream(file_id, data, max_bytes)
    else:
        size = await asyncio.to_thread(store.copy_from, file_id, data, max_bytes)
    return file_id, size


MAX_FILENAME_CHARS = 512


async def get_file(session: AsyncSession, project_id: str, file_id: str) -> File:
    return await get_owned(session, File, "file", file_id, project_id)


async def content_source(session: AsyncSession, project_id: str, file_id: str) -> StoredBlob | None:
    """The file's stored bytes (read them with `chunks()`), or None when the file is gone."""
    try:
        row = await get_file(session, project_id, file_id)
    except NotFound:
        return None
    return await blob_store().stat(row.id)


async def list_files(session: AsyncSession, project_id: str, query: PageQuery, purpose: str | None = None) -> dict:
    """A page of the project's files, of one purpose or all."""
    if purpose and purpose not in LISTED_PURPOSES:
        raise InvalidRequest(f"Invalid purpose '{purpose[:64]}': expected one of {list(LISTED_PURPOSES)}.",
                             param="purpose")
    stmt = select(File).where(File.project_id == project_id)
    if purpose:
        stmt = stmt.where(File.purpose == purpose)
    return await paginate(session, stmt, File, query, file_to_dict, order_column=File.sequence)


async def delete_file(session: AsyncSession, project_id: str, file_id: str) -> None:
    """Delete the row and commit, then the blob (a crash in between leaves an orphan blob for `sweep`)."""
    row = await get_file(session, project_id, file_id)
    await session.delete(row)
    await session.commit()
    await blob_store().delete_async(file_id)


async def sweep_blobs(session: AsyncSession, older_than: float = 0) -> int:
    """Remove unfinished uploads and blobs with no row (of a file, or of a container's own file),
    last written more than `older_than` seconds ago."""
    from codeinterp.store.containers import ContainerFile  # (it imports this module)

    async def known(names: list[str]) -> list[str]:
        if not names:
            return []
        found = list((await session.execute(select(File.id).where(File.id.in_(names)))).scalars())
        found += (await session.execute(select(ContainerFile.id).where(ContainerFile.id.in_(names)))).scalars()
        await session.commit()  # no transaction is held while blobs are deleted
        return found

    return await blob_store().sweep(known, older_than)

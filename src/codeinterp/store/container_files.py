"""The files an API container holds (`/v1/containers/{id}/files`): rows of `container_files` and
the blobs behind them (see `codeinterp.store.containers` for which blob backs a row)."""

import asyncio
import posixpath
import secrets

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from codeinterp.store.blobs import StoredBlob
from codeinterp.store.containers import DATA_DIR, ContainerFile, NewFile
from codeinterp.store.files import blob_store, get_file
from codeinterp.store.ownership import get_owned
from codeinterp.store.pagination import PageQuery, paginate

MAX_NAME_BYTES = 255  # of a file name in /mnt/data (the filesystem's limit)


def cfile_to_dict(row: ContainerFile) -> dict:
    return {"id": row.id, "object": "container.file", "created_at": row.created_at, "bytes": row.bytes,
            "container_id": row.container_id, "path": row.path, "source": row.source}


def blob_name(row: ContainerFile) -> str:
    return row.file_id or row.id


async def stored_blob(row: ContainerFile) -> StoredBlob | None:
    """The bytes behind a row, or None when they are gone (a file copied in by id whose Files API
    file was deleted since)."""
    return await blob_store().stat(blob_name(row))


def relative(path: str) -> str:
    """A row's path as code and the model name it below /mnt/data."""
    return path[len(DATA_DIR):] if path.startswith(DATA_DIR) else path.lstrip("/")


def upload_path(filename: str, prefix: str | None = None) -> str:
    """Where a file copied into a container lies: /mnt/data/<prefix>-<name>, the prefix (an id, as
    OpenAI's) keeping uploads apart, the name shortened to fit a file name's bytes."""
    prefix = prefix or secrets.token_hex(16)
    name = posixpath.basename((filename or "").replace("\\", "/")).strip() or "file"
    if name in (".", ".."):
        name = "file"
    stem, ext = posixpath.splitext(name)
    room = MAX_NAME_BYTES - len(f"{prefix}-".encode())
    if len(ext.encode()) > room // 2:
        stem, ext = stem + ext, ""
    while len((stem + ext).encode()) > room:
        stem = stem[:-1]
    return f"{DATA_DIR}{prefix}-{stem}{ext}"


async def from_file_id(session: AsyncSession, project_id: str, file_id: str) -> NewFile:
    """A `user` file of the container holding a Files API file of the project (NotFound if none)."""
    row = await get_file(session, project_id, file_id)
    return NewFile(upload_path(row.filename, row.id), "user", row.bytes, row.id)


async def files_of(c: AsyncConnection, container_id: str) -> list[ContainerFile]:
    return list((await c.execute(select(ContainerFile).where(ContainerFile.container_id == container_id)
                                 .order_by(ContainerFile.sequence))).all())


async def list_files(session: AsyncSession, container_id: str, query: PageQuery) -> dict:
    stmt = select(ContainerFile).where(ContainerFile.container_id == container_id)
    return await paginate(session, stmt, ContainerFile, query, cfile_to_dict, order_column=ContainerFile.sequence)


async def get_cfile(session: AsyncSession, project_id: str, container_id: str, cfile_id: str) -> ContainerFile:
    return await get_owned(session, ContainerFile, "container file", cfile_id, project_id, container_id=container_id)


async def delete_cfile(c: AsyncConnection, row: ContainerFile) -> list[str]:
    """Forget the file; its own blob is returned, to delete once committed."""
    await c.execute(delete(ContainerFile).where(ContainerFile.id == row.id))
    return [] if row.file_id else [row.id]


async def delete_blobs(names: list[str]) -> None:
    for name in names:
        await asyncio.to_thread(blob_store().delete, name)

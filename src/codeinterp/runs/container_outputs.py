"""What an execution leaves behind, saved: images the code displayed and files it created or
changed under /mnt/data. A thread's container saves them as Files API files (`assistants_output`);
an API container as its own `assistant` container files (files at the path the code wrote, images
at /mnt/data/<container file id>.png).

Both keep the same limits: at most `max_files_per_execution` files, `sandbox_data_mb` bytes
(counted at each file's apparent size, so sparse files cannot pass it) and the project's storage
quota; copying stops at the deadline. Bytes are stored first, then the rows are added in one
short transaction that checks the quota again with the project locked.
"""

import asyncio
import time
from dataclasses import dataclass

from codeinterp.config import Settings
from codeinterp.runs.container_state import ApiContainer, ContainerState, ThreadContainer
from codeinterp.runs.python_tool import NotSaved, SavedOutputs
from codeinterp.sandbox.types import ExecutionResult, FileTooLarge
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.blobs import BlobTooLarge
from codeinterp.store.container_files import delete_blobs
from codeinterp.store.db import Database
from codeinterp.store.ids import new_id
from codeinterp.store.text import valid_utf8

MB = 1024 * 1024


@dataclass
class Stored:
    blob: str  # the blob's name: a file id (thread) or a container file id (API container)
    size: int
    path: str | None  # relative to /mnt/data; None for a thread's image
    filename: str  # a thread's Files API file name
    image: bool = False


async def store_outputs(db: Database, settings: Settings, state: ContainerState, result: ExecutionResult,
                        deadline: float | None = None) -> SavedOutputs:
    """Save the execution's images and changed files as the container's (see the module)."""
    api = isinstance(state, ApiContainer)
    images = [o for o in result.outputs if o.kind == "image"]
    out = SavedOutputs(max_files=settings.max_files_per_execution)
    if not result.files_changed and not images:
        return out
    changes = result.files_changed[:out.max_files]
    out.over_cap = len(result.files_changed) - len(changes)
    quota = settings.project_storage_mb * MB
    async with db.session() as session:
        room = quota - await file_store.storage_used(session, state.project_id)
    budget = settings.sandbox_data_mb * MB
    store = file_store.blob_store()
    stamp = int(time.time())
    stored: list[Stored] = []
    try:
        for n, o in enumerate(images):
            name = new_id("cfile" if api else "file")
            path = f"{name}.png" if api else None
            if len(o.png) > room:
                out.not_saved.append(NotSaved(path or f"image_{stamp}_{n}.png", len(o.png), "storage_quota",
                                              settings.project_storage_mb))
                continue
            size = await asyncio.to_thread(store.write_bytes, name, o.png)
            room -= size
            stored.append(Stored(name, size, path, f"image_{stamp}_{n}.png", image=True))
            if api and state.sandbox is not None:  # the image lies in the container too, at its path
                await state.sandbox.put_file(path, o.png)
        for change in changes:
            path = valid_utf8(change.path)  # as stored and shown; the sandbox's file keeps its own name
            if change.size > budget:
                out.not_saved.append(NotSaved(path, change.size, "execution_budget", settings.sandbox_data_mb))
            elif change.size > room:
                out.not_saved.append(NotSaved(path, change.size, "storage_quota", settings.project_storage_mb))
            elif deadline is not None and time.time() >= deadline:
                out.not_saved.append(NotSaved(path, change.size, "expired"))
            else:
                name = new_id("cfile" if api else "file")
                try:
                    size = await store.copy_from_stream(
                        name, state.sandbox.read_file(change.path, max_bytes=change.size), max_bytes=change.size)
                except (OSError, BlobTooLarge, FileTooLarge):  # gone, replaced or grown since the execution ended
                    out.not_saved.append(NotSaved(path, change.size, "unreadable"))
                    continue
                budget -= size
                room -= size
                stored.append(Stored(name, size, path, f"/mnt/data/{path}"))
        kept, replaced = await (_add_api_rows if api else _add_thread_rows)(db, state, stored, quota)
    except BaseException:
        await delete_blobs([s.blob for s in stored])
        raise
    await delete_blobs(replaced + [s.blob for s in stored if s.blob not in kept])
    for s in stored:
        if s.blob not in kept:
            out.not_saved.append(NotSaved(s.path or s.filename, s.size, "storage_quota", settings.project_storage_mb))
        elif s.image:
            out.images.append(s.blob)
            if s.path is not None:
                out.file_ids[s.path] = s.blob
        else:
            if not api:
                state.generated[s.path] = s.blob
            out.files.append(s.path)
            out.file_ids[s.path] = s.blob
    return out


async def _rows_within_quota(session, project_id: str, stored: list[Stored], quota: int) -> list[Stored]:
    """Those of `stored` that fit in the project's quota, checked with the project locked."""
    room = quota - await file_store.storage_used(session, project_id, lock=True)
    fitting = []
    for s in stored:
        if s.size <= room:
            room -= s.size
            fitting.append(s)
    return fitting


async def _add_thread_rows(db: Database, ts: ThreadContainer, stored: list[Stored],
                           quota: int) -> tuple[set[str], list[str]]:
    """Files API files for the stored blobs that fit, recorded as the thread container's."""
    if not stored:
        return set(), []
    async with db.session() as session:
        fitting = await _rows_within_quota(session, ts.project_id, stored, quota)
        for s in fitting:
            await file_store.add_file_row(session, s.blob, ts.project_id, s.filename, s.size,
                                          file_store.OUTPUT_PURPOSE)
        replaced = await container_store.add_files(await session.connection(), ts.container_id, ts.project_id, [
            container_store.NewFile(s.filename, "assistant", s.size, s.blob) for s in fitting if s.path is not None])
        await session.commit()
    return {s.blob for s in fitting}, replaced


async def _add_api_rows(db: Database, state: ApiContainer, stored: list[Stored],
                        quota: int) -> tuple[set[str], list[str]]:
    """`assistant` container files for the stored blobs that fit (a file at a path replaces the one before)."""
    if not stored:
        return set(), []
    async with db.session() as session:
        fitting = await _rows_within_quota(session, state.project_id, stored, quota)
        replaced = await container_store.add_files(await session.connection(), state.container_id, state.project_id, [
            container_store.NewFile(f"{container_store.DATA_DIR}{s.path}", "assistant", s.size, id=s.blob)
            for s in fitting])
        await session.commit()
    state.copied.update(s.blob for s in fitting)
    return {s.blob for s in fitting}, replaced

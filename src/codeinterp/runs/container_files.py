"""The files of API containers (`/v1/containers/{id}/files`): part of the containers service
(`Containers` in `runs/containers.py` takes these methods), kept here for size."""

import asyncio
import functools
import logging

from codeinterp.runs.container_state import ApiContainer
from codeinterp.sandbox.types import SessionClosed
from codeinterp.store import container_files as cfiles
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.errors import QuotaExceeded
from codeinterp.store.pagination import PageQuery

log = logging.getLogger(__name__)

MB = 1024 * 1024


def on_service_loop(method):
    """Run the method on the service's loop when awaited from another (the HTTP server's)."""
    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        if self.loop is None or asyncio.get_running_loop() is self.loop:
            return await method(self, *args, **kwargs)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), self.loop))
    return wrapper


class ContainerFiles:
    """Methods of `Containers` on an API container's files; they use its `db`, `settings`,
    `sandboxes`, `_api`, `_find`, `_find_running` and `_api_state`."""

    async def _sync_files(self, state: ApiContainer) -> None:
        """Remove from the session the files deleted through the API; copy into a new session every
        container file (a file added while the session lives is put into it by `add_file`: its row
        is committed before `add_file` looks for the session, and the session is set before this
        reads the rows, so one of the two copies it)."""
        await self._remove_deleted(state)
        if state.synced:
            return
        async with self.db.transaction() as c:
            rows = [r for r in await cfiles.files_of(c, state.container_id) if r.id not in state.copied]
        for row in rows:
            source = await cfiles.stored_blob(row)
            if source is not None:
                await state.sandbox.put_file(cfiles.relative(row.path), source.chunks())
            else:
                log.warning("container file %s has no bytes (its file was deleted); not copied", row.id)
            state.copied.add(row.id)
        state.synced = True

    @staticmethod
    async def _remove_deleted(state: ApiContainer) -> None:
        """Remove from the session the files deleted through the API since; the caller holds `state.lock`."""
        if state.removed:
            paths, state.removed = [f"/mnt/data/{p}" for p in state.removed], []
            await state.sandbox.execute(f'[__import__("os").remove(p) for p in {paths!r} '
                                        f'if __import__("os").path.isfile(p)] and None')

    @on_service_loop
    async def add_file(self, project_id: str, container_id: str, new: container_store.NewFile | None = None,
                       file_id: str | None = None) -> dict:
        """Add an uploaded file (`new`, its blob stored under its id) or a copy of the project's
        Files API file `file_id`; it is put into a running session at once. The container file object."""
        state = await self._api_state(project_id, container_id, touch=True)
        async with self.db.session() as session:
            if new is None:
                new = await cfiles.from_file_id(session, project_id, file_id)
            else:
                quota = self.settings.project_storage_mb * MB
                if await file_store.storage_used(session, project_id, lock=True) + new.bytes > quota:
                    raise QuotaExceeded(quota)
            replaced = await container_store.add_files(await session.connection(), container_id, project_id, [new])
            row = await cfiles.get_cfile(session, project_id, container_id, new.id)
            await session.commit()
        await cfiles.delete_blobs(replaced)
        sandbox = state.sandbox
        if sandbox is not None and self.sandboxes.get(sandbox.id) is not None:
            try:
                source = await cfiles.stored_blob(row)
                if source is not None:
                    await sandbox.put_file(cfiles.relative(row.path), source.chunks())
                state.copied.add(row.id)
            except SessionClosed:  # copied into the next session when it starts
                pass
        return cfiles.cfile_to_dict(row)

    @on_service_loop
    async def ensure_running(self, project_id: str, container_id: str) -> None:
        """NotFound if the project has no such container, ContainerExpired if it expired."""
        await self._find_running(project_id, container_id)

    @on_service_loop
    async def list_files(self, project_id: str, container_id: str, query: PageQuery) -> dict:
        await self._find(project_id, container_id)
        async with self.db.session() as session:
            return await cfiles.list_files(session, container_id, query)

    @on_service_loop
    async def get_file(self, project_id: str, container_id: str, cfile_id: str):
        """The container file's row (NotFound once the container expired: its files are gone)."""
        await self._find(project_id, container_id)
        async with self.db.session() as session:
            return await cfiles.get_cfile(session, project_id, container_id, cfile_id)

    @on_service_loop
    async def delete_file(self, project_id: str, container_id: str, cfile_id: str) -> None:
        row = await self._find(project_id, container_id)
        async with self.db.session() as session:
            cfile = await cfiles.get_cfile(session, project_id, container_id, cfile_id)
            blobs = await cfiles.delete_cfile(await session.connection(), cfile)
            await container_store.touch(await session.connection(), row.id)
            await session.commit()
        await cfiles.delete_blobs(blobs)
        state = self._api.get(container_id)
        if state is not None and state.sandbox is not None:
            state.copied.discard(cfile_id)
            state.removed.append(cfiles.relative(cfile.path))
            if not state.lock.locked():  # no code runs: the file leaves the session now, else before the next cell
                async with state.lock:
                    if state.sandbox is not None and self.sandboxes.get(state.sandbox.id) is not None:
                        try:
                            await self._remove_deleted(state)
                        except SessionClosed:
                            pass

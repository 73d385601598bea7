"""The containers service: every container's sandbox session, its files and its expiry, for
threads' runs and for the Containers API alike (one instance, made by the run engine, shared with
the API as `app.state.containers`).

A container owns one sandbox session, started on first use and counted against the per-project
(`CODEINTERP_PROJECT_MAX_SESSIONS`) and per-server caps: at a cap, the least recently used idle
session is closed to make room, and its container is told at its next execution that its state
was lost.

- A thread's container is found by the thread's id. It is made the first time the model runs
  code in the thread; its session expires `CODEINTERP_SANDBOX_IDLE_EXPIRY_SECONDS` (an hour) after
  its last use. Input files (assistant and thread `tool_resources`, message attachments) are copied
  into /mnt/data under their original names, with a suffix where two names collide; files the code
  writes become Files API files with purpose `assistants_output`.
- An API container (`/v1/containers`) is found by its id. Its session runs with the memory of its
  `memory_limit` tier, and the backend closes it no sooner than the container's own expiry. Every
  container file is in the session at its `path`; files the code writes become `assistant`
  container files. Expiry is decided whenever the container is read: an expired container's
  session closes and its files go. Deleting one interrupts running code and closes its session.

Public methods may be awaited from another event loop (the HTTP server's): they run on the loop
the service started on.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from codeinterp.config import Settings
from codeinterp.runs.container_files import ContainerFiles, on_service_loop
from codeinterp.runs.container_state import ApiContainer, ContainerState, ThreadContainer
from codeinterp.runs.turn_loop import NoSessionFree
from codeinterp.sandbox.interface import SandboxBackend, SandboxSession
from codeinterp.sandbox.limits import limits_from
from codeinterp.sandbox.types import SessionClosed, SessionLimitReached
from codeinterp.store import container_files as cfiles
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.blobs import read_chunks
from codeinterp.store.db import Database
from codeinterp.store.errors import ContainerExpired, NotFound
from codeinterp.store.pagination import PageQuery
from codeinterp.store.usage import record_session

log = logging.getLogger(__name__)

FORGET_INTERVAL_SECONDS = 60.0
TOUCH_INTERVAL_SECONDS = 30.0  # a container's last_active_at is written at most this often (expiry is in minutes)
SESSION_EXPIRY_SLACK_SECONDS = 60.0  # an API container's session outlives its expiry by this much
AUTO_CONTAINER_NAME = "Auto container"


class Containers(ContainerFiles):
    def __init__(self, db: Database, sandboxes: SandboxBackend, settings: Settings) -> None:
        self.db = db
        self.sandboxes = sandboxes
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self._threads: dict[str, ThreadContainer] = {}  # thread id -> its container
        self._api: dict[str, ApiContainer] = {}  # container id -> an API container in use
        self._deleting: set[str] = set()  # API containers being deleted now
        self._starting = asyncio.Lock()  # held while a new session is counted against the cap
        self._pending: dict[str, int] = {}  # project id -> sessions starting now
        self._forgot_at = 0.0  # when `_forget_unused_api` last looked
        self._closing: set[asyncio.Task] = set()  # idle sessions closing to make room

    async def start(self) -> None:
        """Containers left by a previous process keep their files' rows, not their sessions."""
        self.loop = asyncio.get_running_loop()
        async with self.db.transaction() as c:
            await container_store.forget_sessions(c)

    async def close(self) -> None:
        if self._closing:
            await asyncio.wait(self._closing)
        for state in self._states():
            if state.sandbox is not None:
                try:
                    await state.sandbox.close()
                except Exception:  # the manager closes what is left
                    log.debug("closing the session of %s failed", state.name, exc_info=True)
        self._threads.clear()
        self._api.clear()

    def _states(self) -> list[ContainerState]:
        return [*self._threads.values(), *self._api.values()]

    # ---- sessions ---------------------------------------------------------------------------

    async def sandbox(self, state: ContainerState) -> SandboxSession:
        """The container's live sandbox session, started (and its files copied in) if needed; the
        caller holds `state.lock`."""
        state.last_used = time.monotonic()
        if state.sandbox is not None and self.sandboxes.get(state.sandbox.id) is None:
            state.session_ended()  # expired or closed by the manager
        if isinstance(state, ApiContainer):
            if state.gone:
                raise SessionClosed(f"Container {state.container_id} was deleted or has expired.")
            if state.sandbox is None:
                limits = replace(limits_from(self.settings), memory_mb=container_store.MEMORY_TIERS[state.memory_limit])
                state.sandbox = await self._new_sandbox(
                    state.project_id, limits, state.expiry_minutes * 60 + SESSION_EXPIRY_SLACK_SECONDS)
                async with self.db.session() as session:
                    await record_session(session, state.project_id, state.sandbox.id)
                    await container_store.touch(await session.connection(), state.container_id, state.sandbox.id)
                    await session.commit()
                state.touched_at = time.monotonic()
            await self._sync_files(state)
        else:
            if state.sandbox is None:
                state.sandbox = await self._new_sandbox(state.project_id)
                state.copied.clear()
                async with self.db.session() as session:
                    await record_session(session, state.project_id, state.sandbox.id)
                    state.container_id = await container_store.start_thread_session(
                        await session.connection(), state.project_id, state.thread_id, state.container_id,
                        state.sandbox.id, container_store.minutes(self.settings.sandbox_idle_expiry_seconds))
                    await session.commit()
                state.touched_at = time.monotonic()
            await self._copy_inputs(state)
        return state.sandbox

    def forget_sandbox(self, state: ContainerState) -> None:
        state.session_ended()

    async def touch(self, state: ContainerState) -> None:
        """The container was used now: its last_active_at is written (at most twice a minute)."""
        if state.container_id is not None and time.monotonic() - state.touched_at >= TOUCH_INTERVAL_SECONDS:
            async with self.db.transaction() as c:
                await container_store.touch(c, state.container_id)
            state.touched_at = time.monotonic()

    async def _new_sandbox(self, project_id: str, limits=None, expiry_seconds: float | None = None) -> SandboxSession:
        """A new sandbox session for the project. At the project's cap (or the server's), the least
        recently used idle session (of the project, or of any) is closed first; when every one is
        running code, NoSessionFree."""
        cap = self.settings.project_max_sessions
        async with self._starting:  # the count and the place it takes are one step; the start is not
            if (len(self._live(project_id)) + self._pending.get(project_id, 0) >= cap
                    and not await self._close_idle(project_id)):
                raise NoSessionFree(f"This project already has {cap} sandbox sessions running code, its limit; "
                                    "try again when one of its runs ends.")
            self._pending[project_id] = self._pending.get(project_id, 0) + 1
        try:
            try:
                return await self.sandboxes.create_session(limits, expiry_seconds)
            except SessionLimitReached:
                if not await self._close_idle(None):
                    raise NoSessionFree(f"All {self.settings.sandbox_max_sessions} sandbox sessions of this server "
                                        "are running code; try again when one ends.") from None
            return await self.sandboxes.create_session(limits, expiry_seconds)
        finally:
            self._pending[project_id] -= 1

    def _live(self, project_id: str | None) -> list[ContainerState]:
        """Containers (of the project, or all) whose sandbox session is open."""
        return [s for s in self._states() if s.sandbox is not None
                and (project_id is None or s.project_id == project_id) and self.sandboxes.get(s.sandbox.id)]

    async def _close_idle(self, project_id: str | None) -> bool:
        """Close the least recently used session (of the project, or of any) that is not running
        code; its container is told at its next execution that its state was lost. False if none is idle."""
        idle = [s for s in self._live(project_id) if not s.lock.locked()]
        if not idle:
            return False
        state = min(idle, key=lambda s: s.last_used)
        async with state.lock:  # free: taken at once; once ended, no run uses the session
            sandbox = state.sandbox
            state.session_ended()
        log.info("closing the idle sandbox session of %s to make room", state.name)
        if project_id is None:  # the server's cap: its backend counts the session until it closed
            await sandbox.close()
        else:  # the project's cap counts live containers: the new session need not wait
            task = asyncio.create_task(_close_quietly(sandbox), name=f"close {sandbox.id}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return True

    # ---- threads' containers ----------------------------------------------------------------

    def get(self, project_id: str, thread_id: str) -> ThreadContainer:
        self._forget_unused()
        ts = self._threads.get(thread_id)
        if ts is None or ts.project_id != project_id:
            ts = ThreadContainer(project_id, thread_id)
            self._threads[thread_id] = ts
        ts.last_used = time.monotonic()
        return ts

    def _forget_unused(self) -> None:
        limit = time.monotonic() - self.settings.sandbox_idle_expiry_seconds
        for thread_id, ts in list(self._threads.items()):
            if ts.last_used < limit and not ts.lock.locked():
                del self._threads[thread_id]

    async def close_thread(self, project_id: str, thread_id: str) -> None:
        """A deleted thread's sandbox session ends now rather than at its expiry, and its container goes."""
        ts = self._threads.pop(thread_id, None)
        if ts is not None and ts.project_id != project_id:
            self._threads[thread_id] = ts
            ts = None
        if ts is not None and ts.sandbox is not None:
            async with ts.lock:
                await ts.sandbox.close()
        async with self.db.transaction() as c:
            await container_store.delete_thread_container(c, project_id, thread_id)

    async def _copy_inputs(self, ts: ThreadContainer) -> None:
        missing = [f for f in ts.inputs.values() if f.file_id not in ts.copied]
        if not missing:
            return
        async with self.db.session() as session:  # released before copying: other runs share the database
            sources = [(f, await file_store.content_source(session, ts.project_id, f.file_id)) for f in missing]
        copied = []
        for f, source in sources:
            if source is None:
                log.warning("input file %s is gone; not copied", f.file_id)
            else:
                await ts.sandbox.put_file(f.path, read_chunks(source))
                copied.append(container_store.NewFile(f"/mnt/data/{f.path}", "user", source.size, f.file_id))
            ts.copied.add(f.file_id)
        if copied:
            async with self.db.transaction() as c:
                await container_store.add_files(c, ts.container_id, ts.project_id, copied)

    # ---- API containers ---------------------------------------------------------------------

    @on_service_loop
    async def executor(self, project_id: str, container_id: str):
        """The code tool on an API container: a `turn_loop.CodeExecutor` running code in its session.
        NotFound for a container the project does not have, ContainerExpired for an expired one."""
        from codeinterp.runs.code_executor import ContainerCodeExecutor  # (it imports this module)

        return ContainerCodeExecutor(self, await self._api_state(project_id, container_id))

    @on_service_loop
    async def create_auto(self, project_id: str, file_ids: list[str], memory_limit: str | None) -> str:
        """A new API container (as Responses' `container: {"type": "auto"}` makes) holding copies of
        `file_ids`: its id. NotFound for an unknown file; InvalidRequest for a memory tier refused."""
        async with self.db.session() as session:
            row = await container_store.create_container(
                session, project_id, AUTO_CONTAINER_NAME, memory_limit or "1g", None, file_ids,
                container_store.MEMORY_TIERS[self.settings.container_max_memory])
        return row.id

    @on_service_loop
    async def files(self, project_id: str, container_id: str) -> list[tuple[str, str]]:
        """(path relative to /mnt/data, container file id) of each file the container holds now."""
        row = await self._find(project_id, container_id)
        return [] if row.status == "expired" else await self._listed_files(container_id)

    @on_service_loop
    async def held_files(self, state: ApiContainer) -> list[tuple[str, str]]:
        """`files` of a container an executor holds (found and checked when it was made)."""
        return [] if state.gone else await self._listed_files(state.container_id)

    async def _listed_files(self, container_id: str) -> list[tuple[str, str]]:
        async with self.db.transaction() as c:
            return [(cfiles.relative(f.path), f.id) for f in await cfiles.files_of(c, container_id)]

    @on_service_loop
    async def usable(self, project_id: str, container_id: str) -> bool:
        """Whether the project has this container and it has not expired."""
        try:
            return (await self._find(project_id, container_id)).status == "running"
        except NotFound:
            return False

    @on_service_loop
    async def retrieve(self, project_id: str, container_id: str) -> dict:
        """The container object (reading it refreshes last_active_at)."""
        return container_store.container_to_dict(await self._find(project_id, container_id, touch=True))

    @on_service_loop
    async def list_containers(self, project_id: str, query: PageQuery, name: str | None) -> dict:
        async with self.db.session() as session:
            page, blobs = await container_store.list_containers(session, project_id, query, name)
        await cfiles.delete_blobs(blobs)
        return page

    @on_service_loop
    async def delete(self, project_id: str, container_id: str) -> None:
        """Interrupt the container's running code, close its session, drop it and its files."""
        await self._find(project_id, container_id)
        self._deleting.add(container_id)  # no execution starts meanwhile
        try:
            await self._end(self._api.get(container_id))
            async with self.db.transaction() as c:
                blobs = await container_store.delete_container(c, container_id)
        finally:
            self._deleting.discard(container_id)
        await cfiles.delete_blobs(blobs)

    async def _find(self, project_id: str, container_id: str, touch: bool = False):
        """The project's API container row, expired now if due (its session then closes and its
        files go). NotFound if the project has no such container."""
        async with self.db.session() as session:
            row, blobs = await container_store.find_container(session, project_id, container_id, touch)
        if row.status == "expired":
            await self._end(self._api.get(container_id))
        await cfiles.delete_blobs(blobs)
        return row

    async def _find_running(self, project_id: str, container_id: str, touch: bool = False):
        """`_find`, and ContainerExpired if the container has expired."""
        row = await self._find(project_id, container_id, touch)
        if row.status == "expired":
            raise ContainerExpired(container_id)
        return row

    async def _api_state(self, project_id: str, container_id: str, touch: bool = False) -> ApiContainer:
        row = await self._find_running(project_id, container_id, touch)
        if container_id in self._deleting:
            raise NotFound("container", container_id)
        state = self._api.get(container_id)
        if state is None:
            self._forget_unused_api()
            state = ApiContainer(project_id, container_id=container_id, memory_limit=row.memory_limit,
                                 expiry_minutes=row.expires_after_minutes)
            self._api[container_id] = state
        return state

    def _forget_unused_api(self) -> None:
        """API containers without a session, unused for longer than their expiry, are forgotten here
        (their rows remain; they are made again when used); looked for at most once a minute."""
        now = time.monotonic()
        if now - self._forgot_at < FORGET_INTERVAL_SECONDS:
            return
        self._forgot_at = now
        for container_id, state in list(self._api.items()):
            live = state.sandbox is not None and self.sandboxes.get(state.sandbox.id) is not None
            if not live and not state.lock.locked() and now - state.last_used > state.expiry_minutes * 60:
                del self._api[container_id]

    async def _end(self, state: ApiContainer | None) -> None:
        """The container was deleted or expired: code running in it is interrupted and its session
        closed; returns once no execution of it is storing outputs."""
        if state is None:
            return
        state.gone = True
        self._api.pop(state.container_id, None)
        if state.sandbox is not None and state.lock.locked():  # the cell is interrupted, then closed if it goes on
            await state.sandbox.interrupt()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.sandbox_interrupt_grace_seconds):
                    await state.lock.acquire()
                    state.lock.release()
        if state.sandbox is not None:
            await state.sandbox.close()
        async with state.lock:
            if state.sandbox is not None:
                await state.sandbox.close()
            state.session_ended()


async def _close_quietly(sandbox: SandboxSession) -> None:
    try:
        await sandbox.close()
    except Exception:  # the backend closes what is left when it stops
        log.warning("closing an idle sandbox session failed", exc_info=True)

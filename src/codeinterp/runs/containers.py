"""One container per thread: its sandbox session, its files, its expiry.

A thread's container (a row of `containers`, see `codeinterp.store.containers`) is made the
first time the model runs code in the thread; its sandbox session starts then, lives on while it is used and
expires `CODEINTERP_SANDBOX_IDLE_EXPIRY_SECONDS` (an hour) after its last use (the sandbox
backend enforces the expiry). Input files
(assistant and thread `tool_resources`, message attachments) are copied into /mnt/data under
their original names, with a suffix where two names collide. Files the code writes become
files with purpose `assistants_output`.
"""

import asyncio
import logging
import posixpath
import time
from dataclasses import dataclass, field

from codeinterp.config import Settings
from codeinterp.runs.prompt import RunPart
from codeinterp.runs.python_tool import NotSaved, SavedOutputs
from codeinterp.runs.turn_loop import NoSessionFree
from codeinterp.sandbox.interface import SandboxBackend, SandboxSession
from codeinterp.sandbox.types import ExecutionResult, FileTooLarge, SessionLimitReached
from codeinterp.store.blobs import BlobTooLarge, read_chunks
from codeinterp.store.db import Database
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.text import valid_utf8
from codeinterp.store.usage import record_session

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 255  # of a file name in /mnt/data (the filesystem's limit)
MAX_EXTENSION_BYTES = 32  # a longer "extension" is not one: the name is shortened as a whole
MB = 1024 * 1024
TOUCH_INTERVAL_SECONDS = 30.0  # a container's last_active_at is written at most this often (expiry is in minutes)


@dataclass
class InputFile:
    file_id: str
    path: str  # relative to /mnt/data


@dataclass
class ThreadContainer:
    project_id: str
    thread_id: str
    inputs: dict[str, InputFile] = field(default_factory=dict)  # file id -> where it is
    generated: dict[str, str] = field(default_factory=dict)  # path -> id of its latest output file
    sandbox: SandboxSession | None = None  # once started
    copied: set[str] = field(default_factory=set)  # file ids present in the current sandbox
    state_lost: bool = False  # a previous sandbox of this thread expired, or the server restarted
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    ended_runs: dict[str, RunPart] = field(default_factory=dict)  # run id -> its part of the prompt, once ended
    container_id: str | None = None  # the thread's container, once code ran
    touched_at: float = 0.0  # when the container's last_active_at was last written (monotonic)

    def assign_inputs(self, files: list[tuple[str, str]]) -> None:
        """Give each new (file id, filename) a free path under /mnt/data."""
        taken = {f.path for f in self.inputs.values()} | set(self.generated)
        for file_id, filename in files:
            if file_id in self.inputs:
                continue
            path = _free_name(_safe_name(filename, file_id), taken)
            taken.add(path)
            self.inputs[file_id] = InputFile(file_id, path)

    def paths(self) -> dict[str, str]:
        """Path -> file id of every file the model may link (generated files win)."""
        known = {f.path: f.file_id for f in self.inputs.values()}
        known.update(self.generated)
        return known

    def listed_paths(self) -> list[str]:
        """The paths to tell the model of: input files first, then generated ones."""
        inputs = sorted(f.path for f in self.inputs.values())
        return inputs + sorted(set(self.generated) - set(inputs))


def _safe_name(filename: str, file_id: str) -> str:
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    if name in ("", ".", ".."):
        name = file_id
    return name


def _fitted(stem: str, ext: str, suffix: str = "") -> str:
    """stem + suffix + ext, the stem shortened (by whole characters) so the name fits MAX_NAME_BYTES
    in UTF-8; an extension too long to be one is shortened with the stem."""
    if len(ext.encode()) > MAX_EXTENSION_BYTES:
        stem, ext = stem + ext, ""
    room = MAX_NAME_BYTES - len((suffix + ext).encode())
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return stem + suffix + ext


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, fitted to MAX_NAME_BYTES, with a suffix where it collides with a name taken."""
    stem, ext = posixpath.splitext(name)
    fitted = _fitted(stem, ext)
    n = 0
    while fitted in taken:
        n += 1
        fitted = _fitted(stem, ext, f"_{n}")
    return fitted


class ThreadContainers:
    def __init__(self, db: Database, sandboxes: SandboxBackend, settings: Settings) -> None:
        self.db = db
        self.sandboxes = sandboxes
        self.settings = settings
        self._threads: dict[str, ThreadContainer] = {}
        self._starting = asyncio.Lock()  # held while a new session is counted against the cap
        self._pending: dict[str, int] = {}  # project id -> sessions starting now

    async def start(self) -> None:
        """Containers left by a previous process keep their files' rows, not their sessions."""
        async with self.db.transaction() as c:
            await container_store.forget_sessions(c)

    def get(self, project_id: str, thread_id: str) -> ThreadContainer:
        self._forget_expired()
        ts = self._threads.get(thread_id)
        if ts is None or ts.project_id != project_id:
            ts = ThreadContainer(project_id, thread_id)
            self._threads[thread_id] = ts
        ts.last_used = time.monotonic()
        return ts

    def _forget_expired(self) -> None:
        limit = time.monotonic() - self.settings.sandbox_idle_expiry_seconds
        for thread_id, ts in list(self._threads.items()):
            if ts.last_used < limit and not ts.lock.locked():
                del self._threads[thread_id]

    async def sandbox(self, ts: ThreadContainer):
        """The thread's live sandbox session, started (and its input files copied) if needed."""
        ts.last_used = time.monotonic()
        if ts.sandbox is not None and self.sandboxes.get(ts.sandbox.id) is None:
            self.forget_sandbox(ts)  # expired or closed by the manager
        if ts.sandbox is None:
            ts.sandbox = await self._new_sandbox(ts.project_id)
            ts.copied.clear()
            async with self.db.session() as session:
                await record_session(session, ts.project_id, ts.sandbox.id)
                ts.container_id = await container_store.start_thread_session(
                    await session.connection(), ts.project_id, ts.thread_id, ts.container_id, ts.sandbox.id,
                    container_store.minutes(self.settings.sandbox_idle_expiry_seconds))
                await session.commit()
            ts.touched_at = time.monotonic()
        await self._copy_inputs(ts)
        return ts.sandbox

    async def touch(self, ts: ThreadContainer) -> None:
        """The container was used now: its last_active_at is written (at most twice a minute)."""
        if ts.container_id is not None and time.monotonic() - ts.touched_at >= TOUCH_INTERVAL_SECONDS:
            async with self.db.transaction() as c:
                await container_store.touch(c, ts.container_id)
            ts.touched_at = time.monotonic()

    async def _new_sandbox(self, project_id: str):
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
                return await self.sandboxes.create_session()
            except SessionLimitReached:
                if not await self._close_idle(None):
                    raise NoSessionFree(f"All {self.settings.sandbox_max_sessions} sandbox sessions of this server "
                                        "are running code; try again when one ends.") from None
            return await self.sandboxes.create_session()
        finally:
            self._pending[project_id] -= 1

    def _live(self, project_id: str | None) -> list[ThreadContainer]:
        """Threads (of the project, or all) whose sandbox session is open."""
        return [t for t in self._threads.values() if t.sandbox is not None
                and (project_id is None or t.project_id == project_id) and self.sandboxes.get(t.sandbox.id)]

    async def _close_idle(self, project_id: str | None) -> bool:
        """Close the least recently used session (of the project, or of any) that is not running
        code; its thread is told at its next execution that its state was lost. False if none is idle."""
        idle = [t for t in self._live(project_id) if not t.lock.locked()]
        if not idle:
            return False
        ts = min(idle, key=lambda t: t.last_used)
        async with ts.lock:  # free: taken at once, and no run uses the session while it closes
            sandbox = ts.sandbox
            self.forget_sandbox(ts)
            log.info("closing the idle sandbox session of thread %s to make room", ts.thread_id)
            await sandbox.close()
        return True

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

    def forget_sandbox(self, ts: ThreadContainer) -> None:
        ts.sandbox = None
        ts.state_lost = True
        ts.generated.clear()

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
                copied.append((f"/mnt/data/{f.path}", "user", source.size, f.file_id))
            ts.copied.add(f.file_id)
        if copied:
            async with self.db.transaction() as c:
                await container_store.add_files(c, ts.container_id, ts.project_id, copied)

    async def store_outputs(self, ts: ThreadContainer, result: ExecutionResult,
                            deadline: float | None = None) -> SavedOutputs:
        """Save images and changed files as `assistants_output` files, within the limits: at most
        `max_files_per_execution` files, `sandbox_data_mb` bytes (counted at each file's apparent
        size, so sparse files cannot pass it) and the project's storage quota. Copying stops at
        `deadline` (a time.time() value). Records each saved path's file id in `ts.generated`.
        """
        images = [o for o in result.outputs if o.kind == "image"]
        out = SavedOutputs(max_files=self.settings.max_files_per_execution)
        if not result.files_changed and not images:
            return out
        changes = result.files_changed[:out.max_files]
        out.over_cap = len(result.files_changed) - len(changes)
        quota = self.settings.project_storage_mb * MB
        async with self.db.session() as session:
            room = quota - await file_store.storage_used(session, ts.project_id)
        budget = self.settings.sandbox_data_mb * MB
        # The bytes are stored first, then the rows are added in one short transaction.
        stamp = int(time.time())
        stored: list[tuple[str, str, int, str | None]] = []  # (filename, file id, size, path saved)
        try:
            for n, o in enumerate(images):
                name = f"image_{stamp}_{n}.png"
                if len(o.png) > room:
                    out.not_saved.append(NotSaved(name, len(o.png), "storage_quota", self.settings.project_storage_mb))
                    continue
                file_id, size = await file_store.store_blob(o.png)
                room -= size
                stored.append((name, file_id, size, None))
            for change in changes:
                path = valid_utf8(change.path)  # as stored and shown; the sandbox's file keeps its own name
                if change.size > budget:
                    out.not_saved.append(NotSaved(path, change.size, "execution_budget", self.settings.sandbox_data_mb))
                elif change.size > room:
                    out.not_saved.append(NotSaved(path, change.size, "storage_quota", self.settings.project_storage_mb))
                elif deadline is not None and time.time() >= deadline:
                    out.not_saved.append(NotSaved(path, change.size, "expired"))
                else:
                    try:
                        file_id, size = await file_store.store_blob(
                            ts.sandbox.read_file(change.path, max_bytes=change.size), max_bytes=change.size)
                    except (OSError, BlobTooLarge, FileTooLarge):  # gone, replaced or grown since the execution ended
                        out.not_saved.append(NotSaved(path, change.size, "unreadable"))
                        continue
                    budget -= size
                    room -= size
                    stored.append((f"/mnt/data/{path}", file_id, size, path))
            kept = await self._add_rows(ts, stored, quota)
        except BaseException:
            for _, file_id, _, _ in stored:
                await asyncio.to_thread(file_store.blob_store().delete, file_id)
            raise
        for filename, file_id, size, path in stored:
            if file_id not in kept:
                await asyncio.to_thread(file_store.blob_store().delete, file_id)
                out.not_saved.append(NotSaved(path or filename, size, "storage_quota", self.settings.project_storage_mb))
            elif path is None:
                out.images.append(file_id)
            else:
                ts.generated[path] = file_id
                out.files.append(path)
        return out

    async def _add_rows(self, ts: ThreadContainer, stored: list[tuple[str, str, int, str | None]], quota: int) -> set[str]:
        """Add the rows of the stored blobs that fit in the project's quota (checked again now, with
        the project locked, against what other writers added meanwhile), and record the files as the
        container's; the ids of those added."""
        kept: set[str] = set()
        if not stored:
            return kept
        project_id = ts.project_id
        async with self.db.session() as session:
            room = quota - await file_store.storage_used(session, project_id, lock=True)
            for filename, file_id, size, _ in stored:
                if size <= room:
                    await file_store.add_file_row(session, file_id, project_id, filename, size,
                                                  file_store.OUTPUT_PURPOSE)
                    room -= size
                    kept.add(file_id)
            await container_store.add_files(await session.connection(), ts.container_id, project_id, [
                (filename, "assistant", size, file_id) for filename, file_id, size, path in stored
                if path is not None and file_id in kept])
            await session.commit()
        return kept

    async def close(self) -> None:
        for ts in self._threads.values():
            if ts.sandbox is not None:
                try:
                    await ts.sandbox.close()
                except Exception:  # the manager closes what is left
                    log.debug("closing session of %s failed", ts.thread_id, exc_info=True)
        self._threads.clear()

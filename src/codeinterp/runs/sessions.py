"""One sandbox session per thread.

A thread's session starts the first time the model runs code, lives on while it is used and
expires one hour after its last use (the sandbox manager enforces the expiry). Input files
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
from codeinterp.sandbox.manager import SandboxManager
from codeinterp.sandbox.types import ExecutionResult
from codeinterp.store.db import Database
from codeinterp.store import files as file_store
from codeinterp.store.usage import record_session

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 3600.0


@dataclass
class InputFile:
    file_id: str
    path: str  # relative to /mnt/data


@dataclass
class ThreadSession:
    project_id: str
    thread_id: str
    inputs: dict[str, InputFile] = field(default_factory=dict)  # file id -> where it is
    generated: dict[str, str] = field(default_factory=dict)  # path -> id of its latest output file
    sandbox: object | None = None  # codeinterp.sandbox.manager.Session once started
    copied: set[str] = field(default_factory=set)  # file ids present in the current sandbox
    state_lost: bool = False  # a previous sandbox of this thread expired, or the server restarted
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    ended_runs: dict[str, RunPart] = field(default_factory=dict)  # run id -> its part of the prompt, once ended

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


def _safe_name(filename: str, file_id: str) -> str:
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    if name in ("", ".", ".."):
        name = file_id
    return name


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, ext = posixpath.splitext(name)
    n = 1
    while f"{stem}_{n}{ext}" in taken:
        n += 1
    return f"{stem}_{n}{ext}"


class ThreadSessions:
    def __init__(self, db: Database, sandboxes: SandboxManager, settings: Settings) -> None:
        self.db = db
        self.sandboxes = sandboxes
        self.settings = settings
        self._threads: dict[str, ThreadSession] = {}

    def get(self, project_id: str, thread_id: str) -> ThreadSession:
        self._forget_expired()
        ts = self._threads.get(thread_id)
        if ts is None or ts.project_id != project_id:
            ts = ThreadSession(project_id, thread_id)
            self._threads[thread_id] = ts
        ts.last_used = time.monotonic()
        return ts

    def _forget_expired(self) -> None:
        limit = time.monotonic() - SESSION_EXPIRY_SECONDS
        for thread_id, ts in list(self._threads.items()):
            if ts.last_used < limit and not ts.lock.locked():
                del self._threads[thread_id]

    async def sandbox(self, ts: ThreadSession):
        """The thread's live sandbox session, started (and its input files copied) if needed."""
        ts.last_used = time.monotonic()
        if ts.sandbox is not None and self.sandboxes.get(ts.sandbox.id) is None:
            self.forget_sandbox(ts)  # expired or closed by the manager
        if ts.sandbox is None:
            ts.sandbox = await self.sandboxes.create_session(expiry_seconds=SESSION_EXPIRY_SECONDS)
            ts.copied.clear()
            async with self.db.session() as session:
                await record_session(session, ts.project_id, ts.sandbox.id)
                await session.commit()
        await self._copy_inputs(ts)
        return ts.sandbox

    async def close_thread(self, project_id: str, thread_id: str) -> None:
        """A deleted thread's sandbox session ends now rather than at its expiry."""
        ts = self._threads.get(thread_id)
        if ts is None or ts.project_id != project_id:
            return
        del self._threads[thread_id]
        if ts.sandbox is not None:
            async with ts.lock:
                await ts.sandbox.close()

    def forget_sandbox(self, ts: ThreadSession) -> None:
        ts.sandbox = None
        ts.state_lost = True
        ts.generated.clear()

    async def _copy_inputs(self, ts: ThreadSession) -> None:
        missing = [f for f in ts.inputs.values() if f.file_id not in ts.copied]
        if not missing:
            return
        async with self.db.session() as session:  # released before copying: other runs share the database
            sources = [(f, await file_store.content_source(session, ts.project_id, f.file_id)) for f in missing]
        for f, source in sources:
            if source is None:
                log.warning("input file %s is gone; not copied", f.file_id)
            else:
                await ts.sandbox.put_file(f.path, source)
            ts.copied.add(f.file_id)

    async def store_outputs(self, ts: ThreadSession, result: ExecutionResult) -> tuple[list[str], list[str]]:
        """Save images and changed files as `assistants_output` files.

        Returns (image file ids in output order, paths of files saved) and records each
        path's file id in `ts.generated`.
        """
        images = [o for o in result.outputs if o.kind == "image"]
        if not result.files_changed and not images:
            return [], []
        # The bytes are stored first, then the rows are added in one short transaction.
        stamp = int(time.time())
        image_blobs = [(f"image_{stamp}_{n}.png", await file_store.store_blob(o.png)) for n, o in enumerate(images)]
        file_blobs = {change.path: await file_store.store_blob(await ts.sandbox.open_file(change.path))
                      for change in result.files_changed}
        rows = image_blobs + [(f"/mnt/data/{path}", blob) for path, blob in file_blobs.items()]
        try:
            async with self.db.session() as session:
                for filename, (file_id, size) in rows:
                    await file_store.add_file_row(session, file_id, ts.project_id, filename, size,
                                                  file_store.OUTPUT_PURPOSE)
                await session.commit()
        except BaseException:
            for _, (file_id, _) in rows:
                await asyncio.to_thread(file_store.blob_store().delete, file_id)
            raise
        for path, (file_id, _) in file_blobs.items():
            ts.generated[path] = file_id
        return [file_id for _, (file_id, _) in image_blobs], list(file_blobs)

    async def close(self) -> None:
        for ts in self._threads.values():
            if ts.sandbox is not None:
                try:
                    await ts.sandbox.close()
                except Exception:  # the manager closes what is left
                    log.debug("closing session of %s failed", ts.thread_id, exc_info=True)
        self._threads.clear()


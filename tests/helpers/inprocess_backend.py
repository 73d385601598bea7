"""A second sandbox backend, NOT isolated: each session is a plain Python process (the sandbox's
own environment) running the sandbox's kernel, in a directory of its own that stands for
/mnt/data (code uses relative paths). It shows that a backend fits behind
`codeinterp.sandbox.interface` without touching runs/ or api/; choose it with

    CODEINTERP_SANDBOX_BACKEND=tests.helpers.inprocess_backend:InProcessBackend
"""

import asyncio
import base64
import contextlib
import importlib.resources
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from codeinterp.config import Settings
from codeinterp.sandbox.interface import OutputCallback, SandboxBackend, SandboxSession
from codeinterp.sandbox.limits import limits_from
from codeinterp.sandbox.types import (
    ExecutionResult, FileTooLarge, Limits, OutputEvent, SandboxError, SandboxFile, SessionClosed, SessionLimitReached,
)

KERNEL_DIR = str(importlib.resources.files("codeinterp.sandbox.bwrap"))  # where kernel.py lives
DRIVER = ("import socket, sys\nsys.path.insert(0, sys.argv[3])\nimport kernel\nkernel.prepare()\n"
          "kernel.serve(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]))\n")
CHUNK = 1024 * 1024


class InProcessSession(SandboxSession):
    def __init__(self, backend: "InProcessBackend", limits: Limits, expiry_seconds: float) -> None:
        self.backend = backend
        self.id = "inp_" + uuid.uuid4().hex[:24]
        self.limits = limits
        self.expiry_seconds = expiry_seconds
        self.closed = False
        self.root = backend.root / self.id
        self.data_dir = self.root / "data"
        self.last_used = time.monotonic()
        self._process: subprocess.Popen | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._notice: str | None = None

    def busy(self) -> bool:
        return self._lock.locked()

    async def start_kernel(self) -> None:
        ours, theirs = socket.socketpair()
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": f"{self.backend.settings.sandbox_env.resolve()}/bin:/usr/bin:/bin", "HOME": str(home),
               "TMPDIR": str(home), "MPLCONFIGDIR": str(home / ".matplotlib"), "LANG": "C.UTF-8",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONDONTWRITEBYTECODE": "1"}
        python = self.backend.settings.sandbox_env / "bin" / "python"
        self._process = subprocess.Popen(
            [str(python.absolute()), "-c", DRIVER, str(theirs.fileno()), str(self.limits.output_bytes), KERNEL_DIR],
            pass_fds=(theirs.fileno(),), cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(
            sock=ours, limit=2 * self.limits.output_bytes + 65536)
        ready = await self._receive()
        if not ready or ready.get("type") != "ready":
            self._kill()
            raise SandboxError("The kernel did not start.")

    async def _receive(self) -> dict | None:
        try:
            line = await self._reader.readline()
            return json.loads(line) if line else None
        except (ValueError, ConnectionError):
            return None

    def _kill(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ---- execution -----------------------------------------------------------------------

    async def execute(self, code: str, timeout: float | None = None,
                      on_output: OutputCallback | None = None) -> ExecutionResult:
        self._check_open()
        async with self._lock:
            self._check_open()
            try:
                return await self._execute(code, timeout, on_output)
            finally:
                self.last_used = time.monotonic()

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback | None) -> ExecutionResult:
        result = ExecutionResult(status="ok")

        async def emit(event: OutputEvent) -> None:
            result.outputs.append(event)
            if on_output is not None and asyncio.iscoroutine(maybe := on_output(event)):
                await maybe

        if self._process is not None and self._process.poll() is not None:
            self._kill()
            self._notice = "The kernel stopped between executions and was restarted; its state was lost."
        if self._process is None:
            await self.start_kernel()
        if self._notice:
            result.state_lost = True
            await emit(OutputEvent(kind="notice", text=self._notice))
            self._notice = None
        before = _snapshot(self.data_dir)
        settings = self.backend.settings
        timeout = timeout if timeout is not None else settings.sandbox_exec_timeout_seconds
        self._writer.write(json.dumps({"type": "execute", "code": code}).encode() + b"\n")
        reading = asyncio.ensure_future(self._read_until_done(emit))
        try:
            if not (await asyncio.wait({reading}, timeout=timeout))[0]:
                result.status = "timeout"
                await self.interrupt()
            if not (await asyncio.wait({reading}, timeout=settings.sandbox_interrupt_grace_seconds))[0]:
                reading.cancel()
                self._kill()
                result.status, result.state_lost = "killed", True
                self._notice = "The kernel was killed and restarted; its state was lost."
        except asyncio.CancelledError:
            reading.cancel()
            await self.interrupt()
            raise
        if result.status != "killed":
            status = reading.result()
            if status is None:
                if self.closed:
                    raise SessionClosed(f"Session {self.id} was closed while it ran code.")
                self._kill()
                result.status, result.state_lost = "crashed", True
                self._notice = "The previous kernel died and was restarted; its state was lost."
                await emit(OutputEvent(kind="notice", text="[kernel died; it restarts on next use]"))
            elif result.status != "timeout":
                result.status = "ok" if status == "ok" else "error"
        after = _snapshot(self.data_dir)
        result.files_changed = [SandboxFile(path=p, size=s, mtime=m / 1e9)
                                for p, (s, m) in sorted(after.items()) if before.get(p) != (s, m)]
        return result

    async def _read_until_done(self, emit) -> str | None:
        while True:
            message = await self._receive()
            if not isinstance(message, dict):
                return None
            kind = message.get("type")
            if kind == "stream":
                await emit(OutputEvent(kind="stderr" if message.get("name") == "stderr" else "stdout",
                                       text=message["text"]))
            elif kind in ("result", "notice"):
                await emit(OutputEvent(kind=kind, text=message["text"]))
            elif kind == "display":
                await emit(OutputEvent(kind="image", png=base64.b64decode(message["png"]), text=message.get("text", "")))
            elif kind == "error":
                await emit(OutputEvent(kind="error", text=message["traceback"], ename=message["ename"],
                                       evalue=message["evalue"]))
            elif kind == "done":
                return message["status"]

    async def interrupt(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGINT)

    # ---- files: paths checked component by component, links never followed ------------------

    def _path(self, path: str) -> Path:
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise SandboxError(f"Not a path inside /mnt/data: {path!r}")
        return self.data_dir.joinpath(*parts)

    def _no_links_above(self, target: Path) -> None:
        for parent in reversed(target.relative_to(self.data_dir).parents[:-1]):
            if (self.data_dir / parent).is_symlink():
                raise SandboxError(f"/mnt/data/{parent} is a link")

    async def put_file(self, path: str, data: bytes | AsyncIterable[bytes]) -> None:
        self._check_open()
        target = self._path(path)
        self._no_links_above(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "wb") as out:
            if isinstance(data, (bytes, bytearray, memoryview)):
                out.write(data)
            else:
                async for chunk in data:
                    out.write(chunk)
        self.last_used = time.monotonic()

    async def read_file(self, path: str, max_bytes: int | None = None) -> AsyncIterator[bytes]:
        self._check_open()
        target = self._path(path)
        try:
            self._no_links_above(target)
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, SandboxError) as error:
            raise FileNotFoundError(f"/mnt/data/{path} is not a readable file") from error
        with open(fd, "rb") as source:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise FileNotFoundError(f"/mnt/data/{path} is not a regular file")
            sent = 0
            while chunk := source.read(CHUNK):
                sent += len(chunk)
                if max_bytes is not None and sent > max_bytes:
                    raise FileTooLarge(f"/mnt/data/{path} holds more than {max_bytes} bytes")
                yield chunk

    async def list_files(self) -> list[SandboxFile]:
        self._check_open()
        return [SandboxFile(path=p, size=s, mtime=m / 1e9) for p, (s, m) in sorted(_snapshot(self.data_dir).items())]

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._kill()
        await asyncio.to_thread(shutil.rmtree, self.root, True)
        self.backend.forget(self)

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosed(f"Session {self.id} is closed.")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for directory, _, names in os.walk(root):  # os.walk does not follow links to directories
        for name in names:
            full = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                info = os.lstat(full)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    found[os.path.relpath(full, root)] = (info.st_size, info.st_mtime_ns)
    return found


class InProcessBackend(SandboxBackend):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir).resolve() / "inprocess-sessions"
        self._sessions: dict[str, InProcessSession] = {}
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        if not (self.settings.sandbox_env / "bin" / "python").exists():
            raise SandboxError("The sandbox's Python environment is missing.")
        self.root.mkdir(parents=True, exist_ok=True)
        self._reaper = asyncio.create_task(self._reap_idle())

    async def create_session(self, limits: Limits | None = None,
                             expiry_seconds: float | None = None) -> InProcessSession:
        if len(self._sessions) >= self.settings.sandbox_max_sessions:
            raise SessionLimitReached("All sessions of this backend are in use.")
        expiry = expiry_seconds if expiry_seconds is not None else self.settings.sandbox_idle_expiry_seconds
        session = InProcessSession(self, limits or limits_from(self.settings), expiry)
        session.data_dir.mkdir(parents=True)
        self._sessions[session.id] = session
        try:
            await session.start_kernel()
        except BaseException:
            await session.close()
            raise
        return session

    def get(self, session_id: str) -> InProcessSession | None:
        return self._sessions.get(session_id)

    def forget(self, session: InProcessSession) -> None:
        self._sessions.pop(session.id, None)

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(1)
            for session in list(self._sessions.values()):
                if not session.busy() and time.monotonic() - session.last_used > session.expiry_seconds:
                    await session.close()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for session in list(self._sessions.values()):
            await session.close()

"""One bubblewrap session: its kernel (restarted when lost), its groups and its /mnt/data."""

import asyncio
import base64
import contextlib
import secrets
import signal
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from codeinterp.sandbox.bwrap import cgroups, datadir
from codeinterp.sandbox.bwrap.channel import KernelChannel, OutputOverrun, well_formed, wire_budget
from codeinterp.sandbox.interface import OutputCallback, SandboxSession
from codeinterp.sandbox.types import ExecutionResult, FileTooLarge, Limits, OutputEvent, SandboxFile, SessionClosed

if TYPE_CHECKING:
    from codeinterp.sandbox.bwrap.backend import BwrapBackend
    from codeinterp.sandbox.bwrap.parent import WarmParent

INLINE_SNAPSHOT_ENTRIES = 64  # /mnt/data walks this small run on the event loop; bigger ones in a thread
CHUNK = datadir.CHUNK


class Kernel:
    """One kernel process: its channel (socket and pidfd) and its session's groups."""

    def __init__(self, channel: KernelChannel, group: cgroups.SessionGroup | None) -> None:
        self.channel = channel
        self.group = group

    @property
    def pid(self) -> int:
        return self.channel.pid

    def alive(self) -> bool:
        """False once the kernel has exited (checked between executions)."""
        return not self.channel.exited()

    def kill(self) -> None:
        self.channel.close()
        if self.group:
            self.group.kill()


class BwrapSession(SandboxSession):
    """`uid` is the session's own uid; `kernel` its kernel while one runs; `data_dir` where the
    host reaches its /mnt/data."""

    def __init__(self, backend: "BwrapBackend", parent: "WarmParent", session_id: str, limits: Limits,
                 expiry_seconds: float, uid: int, data_dir: Path) -> None:
        self.backend = backend
        self.parent = parent  # the warm parent that forks its kernels and holds its /mnt/data
        self.id = session_id
        self.limits = limits
        self.expiry_seconds = expiry_seconds
        self.data_dir = data_dir
        self.uid = uid
        self.created_at = time.time()
        self.last_used = time.monotonic()
        self.closed = False
        self.kernel: Kernel | None = None
        self.group: cgroups.SessionGroup | None = None
        self._lock = asyncio.Lock()
        self._restart_notice: str | None = None
        self._abandoned: str | None = None  # the id of a cell whose caller stopped waiting before it ended

    def busy(self) -> bool:
        """Whether a cell runs now (an idle session may expire, a busy one not)."""
        return self._lock.locked()

    def hand_out(self, expiry_seconds: float) -> None:
        """A warm session becomes a caller's: its expiry and clocks start now."""
        self.expiry_seconds = expiry_seconds
        self.created_at = time.time()
        self.last_used = time.monotonic()

    # ---- files ---------------------------------------------------------------------------

    async def put_file(self, path: str, data: bytes | AsyncIterable[bytes]) -> None:
        self._check_open()
        if isinstance(data, (bytes, bytearray, memoryview)):
            await asyncio.to_thread(datadir.write_file, self.data_dir, path, bytes(data), self.uid)
        else:
            out = await asyncio.to_thread(datadir.create_file, self.data_dir, path, self.uid)
            try:
                async for chunk in data:
                    self._check_open()
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
        self.last_used = time.monotonic()

    async def read_file(self, path: str, max_bytes: int | None = None) -> AsyncIterator[bytes]:
        self._check_open()
        source = await asyncio.to_thread(datadir.open_file, self.data_dir, path)
        try:
            left = max_bytes
            while True:
                chunk = await asyncio.to_thread(source.read, CHUNK if left is None else min(CHUNK, left + 1))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                    if left < 0:
                        raise FileTooLarge(f"/mnt/data/{path} holds more than {max_bytes} bytes")
                yield chunk
        finally:
            source.close()

    async def list_files(self) -> list[SandboxFile]:
        self._check_open()
        return datadir.changes({}, await asyncio.to_thread(datadir.snapshot, self.data_dir))

    # ---- execution -----------------------------------------------------------------------

    async def execute(self, code: str, timeout: float | None = None,
                      on_output: OutputCallback | None = None) -> ExecutionResult:
        self._check_open()
        async with self._lock:
            self._check_open()
            self.last_used = time.monotonic()
            try:
                return await self._execute(code, timeout, on_output)
            finally:
                self.last_used = time.monotonic()

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback | None) -> ExecutionResult:
        started = time.monotonic()
        result = ExecutionResult(status="ok")

        async def emit(event: OutputEvent) -> None:
            last = result.outputs[-1] if result.outputs else None
            if last is not None and event.kind in ("stdout", "stderr") and last.kind == event.kind:
                last.text += event.text  # one event per run of the same stream
            else:
                result.outputs.append(OutputEvent(kind=event.kind, text=event.text, png=event.png,
                                                  ename=event.ename, evalue=event.evalue))
            if on_output is not None:
                maybe = on_output(event)
                if asyncio.iscoroutine(maybe):
                    await maybe

        if self.kernel is not None and not self.kernel.alive():
            await self._kill_kernel(f"The kernel stopped between executions ({self._death_reason()}) and was "
                                    "restarted; variables and imports were lost (files in /mnt/data remain).")
        if self.kernel is not None and self._abandoned is not None:
            await self._finish_abandoned()
        if self.kernel is None:
            await self.start_kernel()
        if self._restart_notice:
            result.state_lost = True
            await emit(OutputEvent(kind="notice", text=self._restart_notice))
            self._restart_notice = None
        before = await self._snapshot()
        kernel = self.kernel
        settings = self.backend.settings
        timeout = timeout if timeout is not None else settings.sandbox_exec_timeout_seconds
        grace = settings.sandbox_interrupt_grace_seconds
        kernel.channel.start_execution(wire_budget(self.limits))
        # Sending the code is inside the timeout: a kernel that stops reading cannot hold the caller.
        # The end of this cell names this id: an end written earlier by code in the kernel (which
        # cannot know a later id) does not end it.
        execution_id = secrets.token_hex(8)
        reading = asyncio.ensure_future(self._send_and_read(kernel, code, result, emit, execution_id))
        try:
            if not (await asyncio.wait({reading}, timeout=timeout))[0]:
                result.status = "timeout"
                self._signal(signal.SIGINT)
            if not reading.done() and not (await asyncio.wait({reading}, timeout=grace))[0]:
                reading.cancel()
                await self._lose_kernel(result, emit, "killed",
                                        f"The kernel did not stop within {grace:g} seconds of an interrupt",
                                        f"execution killed after {timeout:g} seconds")
        except asyncio.CancelledError:
            reading.cancel()
            self._signal(signal.SIGINT)
            self._abandoned = execution_id
            raise
        if result.status != "killed":
            status = reading.result()
            if status is None and self.closed:
                raise SessionClosed(f"Session {self.id} was closed while it ran code.")
            if status == "overrun":
                result.truncated = True
                await emit(OutputEvent(kind="notice", text=f"[output truncated after {self.limits.output_bytes} "
                                                           "bytes: the kernel wrote past its output limit]\n"))
                await self._lose_kernel(result, emit, "crashed", "The previous kernel wrote past its output limit",
                                        "kernel stopped: it wrote past its output limit")
            elif status is None:
                reason = self._death_reason()
                await self._lose_kernel(result, emit, "crashed", f"The previous kernel stopped ({reason})",
                                        f"kernel died: {reason}")
            elif result.status != "timeout":
                result.status = "ok" if status == "ok" else "error"
        after = await self._snapshot()
        result.files_changed = datadir.changes(before, after)
        result.duration_seconds = time.monotonic() - started
        return result

    async def _snapshot(self) -> dict[str, tuple[int, int]]:
        small = datadir.small_snapshot(self.data_dir, INLINE_SNAPSHOT_ENTRIES)
        return small if small is not None else await asyncio.to_thread(datadir.snapshot, self.data_dir)

    async def _send_and_read(self, kernel: Kernel, code: str, result: ExecutionResult, emit,
                             execution_id: str) -> str | None:
        with contextlib.suppress(ConnectionError, OSError):  # a kernel that just died: the reader sees the end
            await kernel.channel.send({"type": "execute", "code": code, "id": execution_id})
        return await _read_until_done(kernel.channel, result, emit, execution_id)

    async def _finish_abandoned(self) -> None:
        """A cell whose caller was cancelled was interrupted then: its remaining output (the
        KeyboardInterrupt traceback) is read and dropped here, so that it is not taken for the next
        cell's. A kernel that does not end it within the grace period is restarted."""
        execution_id, self._abandoned = self._abandoned, None
        kernel = self.kernel
        kernel.channel.start_execution(wire_budget(self.limits))

        async def drop(_event: OutputEvent) -> None:
            pass

        try:
            async with asyncio.timeout(self.backend.settings.sandbox_interrupt_grace_seconds):
                status = await _read_until_done(kernel.channel, ExecutionResult(status="ok"), drop, execution_id)
        except TimeoutError:
            status = None
        if status in (None, "overrun"):
            await self._kill_kernel("The previous cell was cancelled and did not stop, so the kernel was "
                                    "restarted; variables and imports were lost (files in /mnt/data remain).")

    def _death_reason(self) -> str:
        if self.group and self.group.out_of_memory():
            return f"the session's memory limit ({self.limits.memory_mb} MB) was exceeded"
        return "the kernel process died"

    async def _lose_kernel(self, result: ExecutionResult, emit, status: str, why: str, notice: str) -> None:
        """The kernel is gone (killed now, or dead): the cell says so, and the next one is told at restart."""
        await self._kill_kernel(f"{why} and was restarted; variables and imports were lost "
                                "(files in /mnt/data remain).")
        result.status = status
        result.state_lost = True
        await emit(OutputEvent(kind="notice", text=f"[{notice}; the kernel restarts on next use and its state "
                                                   "is lost]"))

    def _signal(self, signum: int) -> None:
        if self.kernel is not None:
            self.kernel.channel.signal(signum)

    async def interrupt(self) -> None:
        self._signal(signal.SIGINT)

    # ---- lifecycle -----------------------------------------------------------------------

    async def start_kernel(self) -> None:
        """Start a kernel (the first, or after one was lost) in the session's groups."""
        if self.group is None:
            self.group = await self.backend.make_group(self)
        elif self.group:  # a restart: what is left of the previous kernel goes first
            await asyncio.to_thread(self.group.empty_out)
        if self.group:
            self.group.reset_memory_events()
        self.kernel = Kernel(await self.backend.spawn_kernel(self), self.group)

    async def _kill_kernel(self, notice: str | None) -> None:
        if self.kernel is not None:
            self.kernel.kill()
            self.kernel = None
        self._restart_notice = notice

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._kill_kernel(None)
        if self.group:
            await asyncio.to_thread(self.group.remove)
        await asyncio.to_thread(datadir.remove_tree, self.data_dir)
        self.backend.session_closed(self)

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosed(f"Session {self.id} is closed.")


async def _read_until_done(channel: KernelChannel, result: ExecutionResult, emit, execution_id: str) -> str | None:
    """Outputs until the kernel says the cell `execution_id` is done: its status, None if the kernel
    died or sent garbage, "overrun" if it sent more than its budget (code writing to the socket
    itself: the kernel caps its own output to the same count)."""
    while True:
        try:
            message = await channel.receive()
        except OutputOverrun:
            return "overrun"
        except ValueError:
            message = None
        if message is None or not well_formed(message):
            return None  # dead, or code in it wrote garbage to its socket: treated as a crash
        kind = message.get("type")
        if kind == "stream":
            await emit(OutputEvent(kind="stderr" if message.get("name") == "stderr" else "stdout",
                                   text=message["text"]))
        elif kind == "result":
            await emit(OutputEvent(kind="result", text=message["text"]))
        elif kind == "display":
            await emit(OutputEvent(kind="image", png=base64.b64decode(message["png"]), text=message.get("text", "")))
        elif kind == "error":
            await emit(OutputEvent(kind="error", text=message["traceback"], ename=message["ename"],
                                   evalue=message["evalue"]))
        elif kind == "notice":
            result.truncated = result.truncated or bool(message.get("truncated"))
            await emit(OutputEvent(kind="notice", text=message["text"]))
        elif kind == "done" and message.get("id") == execution_id:
            result.truncated = result.truncated or bool(message.get("truncated"))
            return message["status"]

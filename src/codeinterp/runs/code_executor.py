"""The code tool of a thread's runs: the turn loop's `CodeExecutor` on the thread's container."""

import asyncio
import time

from codeinterp import metrics
from codeinterp.runs.containers import ThreadContainer, ThreadContainers
from codeinterp.runs.python_tool import SavedOutputs
from codeinterp.runs.turn_loop import CodeExecutor, Stopped
from codeinterp.sandbox.interface import OutputCallback
from codeinterp.sandbox.types import ExecutionResult, SessionClosed
from codeinterp.store.text import valid_utf8


NOTE_STATE_LOST = ("[note: this thread's earlier session ended (it expired, was closed to make room for "
                   "other sessions, or the server restarted); "
                   "variables and files made in it are gone, input files were copied again]\n")


class ThreadCodeExecutor(CodeExecutor):
    """The code tool of a thread's runs: its sandbox session, started or replaced as needed, its
    outputs stored as the thread's files."""

    def __init__(self, containers: ThreadContainers, ts: ThreadContainer) -> None:
        self.containers = containers
        self.ts = ts
        self._running = None  # the sandbox session while code runs

    async def execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                      deadline: float | None) -> tuple[ExecutionResult, SavedOutputs, str]:
        async with self.ts.lock:
            result, note = await self._execute(code, timeout, on_output, deadline)
            _valid_text(result)
            saved = await self.containers.store_outputs(self.ts, result, deadline=deadline)
            await self.containers.touch(self.ts)
        return result, saved, note

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                       deadline: float | None) -> tuple[ExecutionResult, str]:
        """Run the code in the thread's session (a session that closed meanwhile is replaced once)."""
        ts = self.ts
        for attempt in (1, 2):
            sandbox = await self._sandbox(deadline)
            note = ""
            if ts.state_lost:
                note = NOTE_STATE_LOST
                ts.state_lost = False
            self._running = sandbox
            try:
                with metrics.CELL_SECONDS.time():
                    return await sandbox.execute(code, timeout=timeout, on_output=on_output), note
            except SessionClosed:
                if attempt == 2:
                    raise
                self.containers.forget_sandbox(ts)
            finally:
                self._running = None
        raise AssertionError("unreachable")

    async def _sandbox(self, deadline: float | None):
        """The thread's session, not waited for past `deadline`."""
        left = None if deadline is None else max(0.0, deadline - time.time())
        try:
            async with asyncio.timeout(left):
                return await self.containers.sandbox(self.ts)
        except TimeoutError:
            raise Stopped("expired") from None

    async def interrupt(self) -> None:
        if self._running is not None:
            await self._running.interrupt()


def _valid_text(result: ExecutionResult) -> None:
    """Make the text a sandbox sent valid UTF-8 (it is stored, streamed and sent to the model)."""
    for output in result.outputs:
        output.text = valid_utf8(output.text)
        output.ename = output.ename and valid_utf8(output.ename)
        output.evalue = output.evalue and valid_utf8(output.evalue)

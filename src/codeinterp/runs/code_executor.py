"""The code tool on a container: the turn loop's `CodeExecutor` on a thread's container (Assistants
runs) or on an API container (Responses)."""

import asyncio
import logging
import time

from codeinterp import metrics
from codeinterp.runs.container_outputs import store_outputs
from codeinterp.runs.container_state import ApiContainer, ContainerState, ThreadContainer
from codeinterp.runs.containers import Containers
from codeinterp.runs.python_tool import SavedOutputs
from codeinterp.runs.turn_loop import CodeExecutor, Stopped
from codeinterp.sandbox.interface import OutputCallback
from codeinterp.sandbox.types import ExecutionResult, OutputEvent, SessionClosed
from codeinterp.store.text import valid_utf8

log = logging.getLogger(__name__)

NOTE_STATE_LOST = ("[note: this thread's earlier session ended (it expired, was closed to make room for "
                   "other sessions, the server restarted, or another server replica ran it); "
                   "variables and files made in it are gone, input files were copied again]\n")
NOTE_CONTAINER_STATE_LOST = ("[note: this container's earlier session ended (it was closed to make room for "
                             "other sessions, the server restarted, or another server replica ran it); "
                             "variables are gone, the container's "
                             "files were copied again]\n")


class SessionCodeExecutor(CodeExecutor):
    """Runs code in a container's sandbox session, started or replaced as needed, and stores its outputs."""

    note_state_lost = NOTE_STATE_LOST

    def __init__(self, containers: Containers, state: ContainerState) -> None:
        self.containers = containers
        self.state = state
        self._running = None  # the sandbox session while code runs

    async def execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                      deadline: float | None) -> tuple[ExecutionResult, SavedOutputs, str]:
        async with self.state.lock:
            result, note = await self._execute(code, timeout, on_output, deadline)
            if isinstance(self.state, ApiContainer) and self.state.gone:
                raise SessionClosed(f"Container {self.state.container_id} was deleted or expired while its code ran.")
            _valid_text(result)
            saved = await store_outputs(self.containers.db, self.containers.settings, self.state, result,
                                        deadline=deadline)
            await self.containers.touch(self.state)
        return result, saved, note

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                       deadline: float | None) -> tuple[ExecutionResult, str]:
        """Run the code in the container's session (a session that closed meanwhile is replaced once)."""
        state = self.state
        for attempt in (1, 2):
            sandbox = await self._sandbox(deadline)
            note = ""
            if state.state_lost:
                note = self.note_state_lost
                state.state_lost = False
            self._running = sandbox
            try:
                with metrics.CELL_SECONDS.time():
                    return await sandbox.execute(code, timeout=timeout, on_output=on_output), note
            except SessionClosed:
                if attempt == 2:
                    raise
                self.containers.forget_sandbox(state)
            finally:
                self._running = None
        raise AssertionError("unreachable")

    async def _sandbox(self, deadline: float | None):
        """The container's session, not waited for past `deadline`."""
        left = None if deadline is None else max(0.0, deadline - time.time())
        try:
            async with asyncio.timeout(left):
                return await self.containers.sandbox(self.state)
        except TimeoutError:
            raise Stopped("expired") from None

    async def interrupt(self) -> None:
        if self._running is not None:
            await self._running.interrupt()

    async def prepare(self) -> None:
        try:
            async with self.state.lock:
                await self._sandbox(None)
        except Exception as error:  # execute meets it again and reports it
            log.debug("starting a container's session ahead of its code failed: %r", error)


class ThreadCodeExecutor(SessionCodeExecutor):
    """The code tool of a thread's runs: outputs become Files API files of the thread's container."""

    def __init__(self, containers: Containers, ts: ThreadContainer) -> None:
        super().__init__(containers, ts)
        self.ts = ts


class ContainerCodeExecutor(SessionCodeExecutor):
    """The code tool on an API container: outputs become its `assistant` container files; running
    code refreshes its last_active_at. May be awaited from another event loop than the service's."""

    note_state_lost = NOTE_CONTAINER_STATE_LOST

    def __init__(self, containers: Containers, state: ApiContainer) -> None:
        super().__init__(containers, state)

    async def files(self) -> list[tuple[str, str]]:
        """(path relative to /mnt/data, container file id) of each file the container holds now."""
        return await self.containers.held_files(self.state)

    async def execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                      deadline: float | None) -> tuple[ExecutionResult, SavedOutputs, str]:
        loop, caller = self.containers.loop, asyncio.get_running_loop()
        if loop is None or loop is caller:
            return await super().execute(code, timeout, on_output, deadline)

        async def output_on_caller_loop(event: OutputEvent) -> None:  # the callback runs where it was made
            async def call() -> None:
                if on_output is not None:
                    value = on_output(event)
                    if asyncio.iscoroutine(value):
                        await value
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), caller))

        return await self._on_service_loop(super().execute(code, timeout, output_on_caller_loop, deadline))

    async def interrupt(self) -> None:
        await self._on_service_loop(super().interrupt())

    async def prepare(self) -> None:
        await self._on_service_loop(super().prepare())

    async def _on_service_loop(self, coroutine):
        loop = self.containers.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


def _valid_text(result: ExecutionResult) -> None:
    """Make the text a sandbox sent valid UTF-8 (it is stored, streamed and sent to the model)."""
    for output in result.outputs:
        output.text = valid_utf8(output.text)
        output.ename = output.ename and valid_utf8(output.ename)
        output.evalue = output.evalue and valid_utf8(output.evalue)

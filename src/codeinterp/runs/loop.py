"""One leg of a run: the model <-> sandbox loop.

A leg starts when a run is created (or resumed by `submit_tool_outputs`) and ends when the
run completes, needs tool outputs, fails, is cancelled, expires or becomes incomplete. Every
change is written to the database first, then published as an event.
"""

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from codeinterp.models.client import ChatClient, Completion, TextDelta, ToolCallDelta, UpstreamError
from codeinterp.runs import prompt
from codeinterp.runs.annotations import file_path_annotations
from codeinterp.runs.events import EventChannel
from codeinterp.runs.python_tool import TOOL_DEFINITION, TOOL_NAME, StreamedCode, result_for_model
from codeinterp.runs.sessions import NoSessionFree, ThreadSession, ThreadSessions
from codeinterp.sandbox.types import ExecutionResult, SandboxError, SessionClosed
from codeinterp.store.assistants import Assistant, Message, Thread, message_to_dict
from codeinterp.store.db import Database
from codeinterp.store.files import File
from codeinterp.store.ids import new_id, now
from codeinterp.store.runs import RUN_COLUMNS, Run, RunStep, run_to_dict, step_to_dict
from codeinterp.store.text import valid_utf8

log = logging.getLogger(__name__)

# The statements of every run, built once (building one costs more than running it on SQLite).
# Inserts take the row's columns; updates set the columns passed besides `row_id`.
INSERT_STEP = insert(RunStep)
INSERT_MESSAGE = insert(Message)
UPDATE_STEP = update(RunStep).where(RunStep.id == bindparam("row_id"))
UPDATE_MESSAGE = update(Message).where(Message.id == bindparam("row_id"))
UPDATE_RUN = update(Run).where(Run.id == bindparam("row_id"))
START_RUN = (update(Run).where(Run.id == bindparam("row_id"), Run.status != "cancelling")
             .values(status="in_progress", started_at=func.coalesce(Run.started_at, bindparam("now")))
             .returning(*RUN_COLUMNS))
COMPLETE_RUN = UPDATE_RUN.where(Run.status != "cancelling").returning(*RUN_COLUMNS)
TOOL_RESOURCES = select(
    select(Assistant.tool_resources).where(Assistant.id == bindparam("assistant_id")).scalar_subquery(),
    select(Thread.tool_resources).where(Thread.id == bindparam("thread_id")).scalar_subquery())

# A step or message still going on after this long is written as in_progress; a quicker one is
# written once, finished.
STEP_WRITE_DELAY_SECONDS = 0.1
# A leg still going on this long after the run's expires_at is stopped wherever it waits. Every wait
# has its own deadline at expires_at (an execution's timeout ends there); this one catches the rest.
LEG_DEADLINE_GRACE_SECONDS = 10.0


class RunCancelled(Exception):
    """The user cancelled the run."""


class RunStopped(Exception):
    """The run cannot go on; `status` is how it ends (failed, expired, incomplete)."""

    def __init__(self, status: str, last_error: dict | None = None, incomplete_reason: str | None = None):
        super().__init__(status)
        self.status = status
        self.last_error = last_error
        self.incomplete_reason = incomplete_reason


@dataclass
class ActiveRun:
    """What the engine knows about a run while it is not finished."""

    id: str
    project_id: str
    thread_id: str
    assistant_id: str
    channel: EventChannel = field(default_factory=EventChannel)
    task: asyncio.Task | None = None
    cancel_requested: bool = False
    finishing: bool = False  # the run is being ended; cancelling its task would interrupt that
    executing: object | None = None  # the sandbox session while code runs
    pending_images: list[str] = field(default_factory=list)  # image file ids not yet in a message
    message: "MessageWriter | None" = None
    tool_step: "ToolStepWriter | None" = None
    expiry: asyncio.TimerHandle | None = None
    position: int = 0  # next step position
    usage: dict | None = None  # the run's token counts so far; written to the run when a leg ends
    awaiting_outputs_until: int | None = None  # the leg ended waiting for tool outputs, until the run's expiry

    def publish(self, name: str, data: dict) -> None:
        self.channel.publish(name, data)


def _tool_call_summary(call: dict) -> dict:
    return {"id": call["id"], "type": "function",
            "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}


class WrittenSoon:
    """Rows announced now and written in a moment, unless their owner writes them first: a step or
    message that finishes within STEP_WRITE_DELAY_SECONDS costs one write, not two."""

    def __init__(self) -> None:
        self.inserted = False
        self._saving = asyncio.Lock()
        self._write_later: asyncio.TimerHandle | None = None

    def write_soon(self, insert) -> None:
        """Call `insert()` (a coroutine function that writes the rows as they are) in a moment."""
        async def write() -> None:
            try:
                async with self._saving:
                    if not self.inserted:
                        await insert()
            except Exception:
                log.exception("writing %r failed", self)
        self._write_later = asyncio.get_running_loop().call_later(
            STEP_WRITE_DELAY_SECONDS, lambda: asyncio.create_task(write()))

    @asynccontextmanager
    async def writing(self):
        """Held while the owner writes the rows (whether or not they were written before)."""
        if self._write_later is not None:
            self._write_later.cancel()
        async with self._saving:
            yield


def _new_step(loop: "RunLoop", step_id: str, step_type: str, details: dict) -> dict:
    """The columns of a step that begins now."""
    ar = loop.ar
    return {"id": step_id, "project_id": ar.project_id, "run_id": ar.id, "thread_id": ar.thread_id,
            "assistant_id": ar.assistant_id, "position": loop.next_position(), "type": step_type,
            "status": "in_progress", "created_at": now(), "step_details": details, "tool_results": {},
            "metadata": {}, "last_error": None, "expired_at": None, "cancelled_at": None, "failed_at": None,
            "completed_at": None, "usage": None}


class MessageWriter(WrittenSoon):
    """An assistant message being written: its message_creation step and streamed text."""

    def __init__(self, loop: "RunLoop", images: list[str]) -> None:
        super().__init__()
        self.loop = loop
        self.id = new_id("msg")
        self.step_id = new_id("step")
        self.images = images
        self.text = ""

    @property
    def text_index(self) -> int:
        return len(self.images)

    def open(self) -> None:
        """Announce the message and its step; they are written in a moment, or when the message ends."""
        ar = self.loop.ar
        self.step = _new_step(self.loop, self.step_id, "message_creation",
                              {"type": "message_creation", "message_creation": {"message_id": self.id}})
        self.message = {"id": self.id, "project_id": ar.project_id, "thread_id": ar.thread_id, "role": "assistant",
                        "content": [], "attachments": [], "assistant_id": ar.assistant_id, "run_id": ar.id,
                        "status": "in_progress", "metadata": {}, "created_at": self.step["created_at"],
                        "completed_at": None, "incomplete_at": None, "incomplete_details": None}
        step_dict, message_dict = step_to_dict(_row(self.step)), message_to_dict(_row(self.message))
        self.write_soon(self._insert)
        ar.publish("thread.run.step.created", step_dict)
        ar.publish("thread.run.step.in_progress", step_dict)
        ar.publish("thread.message.created", message_dict)
        ar.publish("thread.message.in_progress", message_dict)
        if self.images:
            ar.publish("thread.message.delta", self._delta([
                {"index": n, "type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
                for n, file_id in enumerate(self.images)]))

    async def _insert(self) -> None:
        async with self.loop.db.transaction() as c:
            await self._write(c)
        self.inserted = True

    async def _write(self, c: AsyncConnection) -> None:
        """Insert the message and its step as they are now, or update them if they were inserted."""
        if self.inserted:
            await c.execute(UPDATE_MESSAGE, _changes(self.message))
            await c.execute(UPDATE_STEP, _changes(self.step))
        else:
            await c.execute(INSERT_STEP, self.step)
            await c.execute(INSERT_MESSAGE, self.message)

    def _delta(self, content: list[dict]) -> dict:
        return {"id": self.id, "object": "thread.message.delta", "delta": {"content": content}}

    def add_text(self, text: str) -> None:
        if not text:
            return
        block: dict = {"value": text}
        if not self.text:
            block["annotations"] = []
        self.text += text
        self.loop.ar.publish("thread.message.delta",
                             self._delta([{"index": self.text_index, "type": "text", "text": block}]))

    def content(self, annotations: list[dict]) -> list[dict]:
        blocks = [{"type": "image_file", "image_file": {"file_id": f, "detail": "auto"}} for f in self.images]
        blocks.append({"type": "text", "text": {"value": self.text, "annotations": annotations}})
        return blocks

    async def close(self, status: str, usage: dict | None = None, incomplete_reason: str | None = None,
                    step_status: str | None = None, last_error: dict | None = None,
                    run_usage: dict | None = None, complete_run: bool = False) -> None:
        """Finish the message (`completed` or `incomplete`) and its step; with `complete_run`, the
        run too, in the same transaction (raises RunCancelled if the run is being cancelled)."""
        ar, t = self.loop.ar, now()
        annotations = file_path_annotations(self.text, self.loop.thread_session.paths())
        if annotations and status == "completed":
            ar.publish("thread.message.delta", self._delta([{
                "index": self.text_index, "type": "text",
                "text": {"annotations": [dict(a, index=n) for n, a in enumerate(annotations)]}}]))
        step_status = step_status or ("completed" if status == "completed" else "cancelled")
        message, step = self.message, self.step
        message.update(content=self.content(annotations), status=status)
        if status == "completed":
            message["completed_at"] = t
        else:
            message.update(incomplete_at=t, incomplete_details={"reason": incomplete_reason})
        step.update(status=step_status, usage=usage, last_error=last_error)
        step[_STEP_TIME_FIELD[step_status]] = t
        async with self.writing(), self.loop.db.transaction() as c:
            await self._write(c)
            run = None
            if complete_run and not ar.cancel_requested:
                values = {"row_id": ar.id, "status": "completed", "completed_at": t}
                if run_usage is not None:
                    values["usage"] = dict(run_usage)
                run = (await c.execute(COMPLETE_RUN, values)).one_or_none()
            if run is None and run_usage is not None:
                await c.execute(UPDATE_RUN, {"row_id": ar.id, "usage": dict(run_usage)})
        self.inserted = True
        ar.publish("thread.message.completed" if status == "completed" else "thread.message.incomplete",
                   message_to_dict(_row(message)))
        ar.publish(f"thread.run.step.{step_status}", step_to_dict(_row(step)))
        ar.message = None
        if complete_run:
            if run is None:
                raise RunCancelled()
            ar.publish("thread.run.completed", run_to_dict(run))


_STEP_TIME_FIELD = {"completed": "completed_at", "cancelled": "cancelled_at", "failed": "failed_at",
                    "expired": "expired_at"}


@dataclass
class ToolCallState:
    index: int  # position in the step's tool_calls
    id: str
    name: str
    code: StreamedCode = field(default_factory=StreamedCode)
    arguments_sent: str = ""


class ToolStepWriter(WrittenSoon):
    """A tool_calls step being written: its calls stream in, then code outputs are added."""

    def __init__(self, loop: "RunLoop") -> None:
        super().__init__()
        self.loop = loop
        self.id = new_id("step")
        self.calls: dict[int, ToolCallState] = {}  # upstream index -> state
        self._unnamed: dict[int, tuple[str | None, str]] = {}  # upstream index -> (id, arguments) before the name
        self.details: dict = {"type": "tool_calls", "tool_calls": []}
        self.tool_results: dict[str, str] = {}

    def open(self) -> None:
        """Announce the step; its row is written with the calls once the model's answer is complete."""
        ar = self.loop.ar
        self.step = _new_step(self.loop, self.id, "tool_calls", self.details)
        ar.tool_step = self
        step_dict = step_to_dict(_row(self.step))
        ar.publish("thread.run.step.created", step_dict)
        ar.publish("thread.run.step.in_progress", step_dict)

    def _publish(self, call: dict) -> None:
        self.loop.ar.publish("thread.run.step.delta", {
            "id": self.id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}}})

    def on_delta(self, delta: ToolCallDelta) -> None:
        state = self.calls.get(delta.index)
        arguments = delta.arguments or ""
        if state is None:
            call_id, early = self._unnamed.pop(delta.index, (None, ""))
            call_id, arguments = delta.id or call_id, early + arguments
            if not delta.name:  # a call is announced once its name is known
                self._unnamed[delta.index] = (call_id, arguments)
                return
            state = ToolCallState(index=len(self.calls), id=call_id or new_id("call"), name=delta.name)
            self.calls[delta.index] = state
            if state.name == TOOL_NAME:
                entry = {"id": state.id, "type": "code_interpreter",
                         "code_interpreter": {"input": "", "outputs": []}}
            else:
                entry = {"id": state.id, "type": "function",
                         "function": {"name": state.name, "arguments": "", "output": None}}
            self.details["tool_calls"].append(entry)
            self._publish(dict(entry, index=state.index))
        self._add_arguments(state, arguments)

    def _add_arguments(self, state: ToolCallState, fragment: str) -> None:
        entry = self.details["tool_calls"][state.index]
        if state.name == TOOL_NAME:
            new = state.code.feed(fragment)
            if new:
                entry["code_interpreter"]["input"] += new
                self._publish({"index": state.index, "type": "code_interpreter", "code_interpreter": {"input": new}})
        elif fragment:
            state.arguments_sent += fragment
            entry["function"]["arguments"] += fragment
            self._publish({"index": state.index, "type": "function", "function": {"arguments": fragment}})

    def on_completion(self, completion: Completion) -> None:
        """Make the step match the assembled tool calls (whatever the deltas left out)."""
        for n, call in enumerate(completion.tool_calls):
            state = self.calls.get(n)
            if state is None:
                self.on_delta(ToolCallDelta(index=n, id=call.id, name=call.name, arguments=""))
                state = self.calls[n]
            entry = self.details["tool_calls"][state.index]
            if state.name == TOOL_NAME:
                rest = state.code.finish(call.arguments)
                entry["code_interpreter"]["input"] = state.code.code
                if rest:
                    self._publish({"index": state.index, "type": "code_interpreter",
                                   "code_interpreter": {"input": rest}})
            elif call.arguments.startswith(state.arguments_sent):
                self._add_arguments(state, call.arguments[len(state.arguments_sent):])
            else:
                entry["function"]["arguments"] = call.arguments

    def add_outputs(self, state: ToolCallState, outputs: list[dict], result_text: str) -> None:
        entry = self.details["tool_calls"][state.index]
        entry["code_interpreter"]["outputs"] = outputs
        self.tool_results[state.id] = result_text
        if outputs:
            self._publish({"index": state.index, "type": "code_interpreter",
                           "code_interpreter": {"outputs": [dict(o, index=n) for n, o in enumerate(outputs)]}})

    def save_soon(self, usage: dict | None) -> None:
        """Write the step as in_progress in a moment, unless it is written before."""
        self.write_soon(lambda: self._save("in_progress", usage, None))

    async def save(self, status: str = "in_progress", usage: dict | None = None,
                   last_error: dict | None = None) -> dict:
        async with self.writing():
            return await self._save(status, usage, last_error)

    async def _save(self, status: str, usage: dict | None, last_error: dict | None) -> dict:
        step = self.step  # inserted by the first save, updated by the next ones
        step.update(tool_results=dict(self.tool_results), status=status, last_error=last_error)
        if usage is not None:
            step["usage"] = usage
        if status != "in_progress":
            step[_STEP_TIME_FIELD[status]] = now()
        async with self.loop.db.transaction() as c:
            await c.execute(*((UPDATE_STEP, _changes(step)) if self.inserted else (INSERT_STEP, step)))
        self.inserted = True
        step_dict = step_to_dict(_row(step))
        if status != "in_progress":
            self.loop.ar.publish(f"thread.run.step.{status}", step_dict)
            if self.loop.ar.tool_step is self:
                self.loop.ar.tool_step = None
        return step_dict

    def __iter__(self):
        return iter(sorted(self.calls.values(), key=lambda c: c.index))


class RunLoop:
    def __init__(self, ar: ActiveRun, db: Database, sessions: ThreadSessions, client: ChatClient,
                 exec_timeout: float | None) -> None:
        self.ar = ar
        self.db = db
        self.sessions = sessions
        self.client = client
        self.exec_timeout = exec_timeout
        self.thread_session: ThreadSession = sessions.get(ar.project_id, ar.thread_id)
        self.expires_at: int | None = None  # the run's, once read

    def next_position(self) -> int:
        self.ar.position += 1
        return self.ar.position

    async def run(self) -> None:
        """Start the leg (status in_progress) and drive the run until the leg ends; raises
        RunCancelled / RunStopped / UpstreamError."""
        ar = self.ar
        async with self.db.transaction() as c:
            run = (await c.execute(START_RUN, {"row_id": ar.id, "now": now()})).one_or_none()
            if run is None or ar.cancel_requested:
                raise RunCancelled()
        self.expires_at = run.expires_at
        grace = LEG_DEADLINE_GRACE_SECONDS + self.sessions.settings.sandbox_interrupt_grace_seconds
        async with self._until_expiry(grace):
            await self._run(run)

    def _seconds_left(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - time.time()

    @asynccontextmanager
    async def _until_expiry(self, grace: float = 0.0):
        """The block is stopped `grace` seconds after the run's expires_at, and the run expires."""
        left = self._seconds_left()
        timeout = asyncio.timeout(None if left is None else max(0.0, left + grace))
        try:
            async with timeout:
                yield
        except TimeoutError:
            if timeout.expired():
                raise RunStopped("expired") from None
            raise

    async def _run(self, run) -> None:
        ar = self.ar
        async with self.db.transaction() as c:
            rows = await prompt.message_rows(c, run.project_id, run.thread_id)
            self.thread_session.assign_inputs(await self._input_files(c, run, rows))
            paths_by_file = {f.file_id: f.path for f in self.thread_session.inputs.values()}
            files = self.thread_session.listed_paths()
            messages = [m for m in [prompt.system_message(run, files, self.sessions.settings.prompt_max_files)] if m]
            messages += await prompt.thread_messages(c, run, rows, paths_by_file, self.thread_session.ended_runs)
            config = _RunConfig(run)
        run_dict = run_to_dict(run)
        if self.thread_session.sandbox is None and _ran_code(messages):
            self.thread_session.state_lost = True  # code ran here before, in a session that is gone
        ar.publish("thread.run.in_progress", run_dict)
        usage = dict(config.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        ar.usage = usage

        while True:
            self._check(config)
            body = config.chat_body(messages, usage)
            async with self._until_expiry():
                completion, tool_step = await self._model_turn(body)
            step_usage = _usage(completion.usage)
            for key in usage:
                usage[key] += step_usage.get(key, 0) if step_usage else 0
            if config.max_prompt_tokens and step_usage and step_usage["prompt_tokens"] > config.max_prompt_tokens:
                await self._end_turn(tool_step, step_usage)
                raise RunStopped("incomplete", incomplete_reason="max_prompt_tokens")
            if completion.finish_reason == "length" and config.max_completion_tokens:
                await self._end_turn(tool_step, step_usage)
                raise RunStopped("incomplete", incomplete_reason="max_completion_tokens")
            if tool_step is None:
                if ar.message is None:  # an empty answer still becomes a message
                    await self._open_message()
                await ar.message.close("completed", usage=step_usage, run_usage=usage, complete_run=True)
                return

            if ar.message is not None:
                await ar.message.close("completed")
            config.tool_choice = "auto"  # a forced tool is forced once
            tool_step.save_soon(usage=step_usage)
            calls = list(tool_step)
            messages.append({"role": "assistant", "content": completion.text or None,
                             "tool_calls": [_chat_tool_call(tool_step, c) for c in calls]})
            functions = []
            for call in calls:
                if call.name == TOOL_NAME:
                    text = await self._run_code(tool_step, call)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                elif call.name in config.function_names:
                    functions.append(tool_step.details["tool_calls"][call.index])
                else:
                    text = f"Error: there is no tool named {call.name!r}."
                    tool_step.details["tool_calls"][call.index]["function"]["output"] = text
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                if ar.cancel_requested or _past(self.expires_at):
                    await tool_step.save(usage=step_usage)
                    self._check(config)
            if functions:
                await tool_step.save(usage=step_usage)
                await self._require_action(functions)
                return
            await tool_step.save("completed", usage=step_usage)

    def _check(self, config: "_RunConfig") -> None:
        if self.ar.cancel_requested:
            raise RunCancelled()
        if _past(config.expires_at):
            raise RunStopped("expired")

    async def _input_files(self, c: AsyncConnection, run: Run, rows: list) -> list[tuple[str, str]]:
        """(file id, filename) of the assistant's, the thread's and the messages' code files, in order."""
        ids: list[str] = []
        owners = (await c.execute(TOOL_RESOURCES, {"assistant_id": run.assistant_id,
                                                   "thread_id": run.thread_id})).one()
        for resources in owners:  # None for an assistant deleted since
            ids += ((resources or {}).get("code_interpreter") or {}).get("file_ids") or []
        for row in rows:
            for a in row.attachments or []:
                tools = [t.get("type") for t in a.get("tools") or []]
                if a.get("file_id") and (not tools or "code_interpreter" in tools):
                    ids.append(a["file_id"])
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        names = dict((await c.execute(select(File.id, File.filename).where(
            File.project_id == run.project_id, File.id.in_(unique)))).all())
        return [(i, names[i]) for i in unique if i in names]

    async def _model_turn(self, body: dict) -> tuple[Completion, "ToolStepWriter | None"]:
        ar = self.ar
        tool_step: ToolStepWriter | None = None
        completion: Completion | None = None
        async for event in self.client.stream(body):
            if isinstance(event, TextDelta):
                if ar.message is None:
                    await self._open_message()
                ar.message.add_text(event.text)
            elif isinstance(event, ToolCallDelta):
                tool_step = tool_step or await self._open_tool_step()
                tool_step.on_delta(event)
            elif isinstance(event, Completion):
                completion = event
        if completion is None:
            raise UpstreamError("The model's answer ended before it was complete.")
        if completion.tool_calls:
            tool_step = tool_step or await self._open_tool_step()
            tool_step.on_completion(completion)
        elif completion.text and ar.message is None:
            await self._open_message()
            ar.message.add_text(completion.text)
        return completion, tool_step

    async def _open_tool_step(self) -> "ToolStepWriter":
        """A tool_calls step begins; the message the model was writing, if any, ends."""
        if self.ar.message is not None:
            await self.ar.message.close("completed")
        tool_step = ToolStepWriter(self)
        tool_step.open()
        return tool_step

    async def _open_message(self) -> None:
        images, self.ar.pending_images = self.ar.pending_images, []
        self.ar.message = MessageWriter(self, images)
        self.ar.message.open()

    async def _end_turn(self, tool_step: "ToolStepWriter | None", usage: dict | None) -> None:
        """Close what the last answer opened when the run stops at a token limit."""
        if self.ar.message is not None:
            await self.ar.message.close("incomplete", usage=usage, incomplete_reason="max_tokens",
                                        step_status="completed")
        if tool_step is not None:
            await tool_step.save("completed", usage=usage)

    async def _run_code(self, tool_step: ToolStepWriter, call: ToolCallState) -> str:
        ar, ts = self.ar, self.thread_session
        code = tool_step.details["tool_calls"][call.index]["code_interpreter"]["input"]
        async with ts.lock:
            try:
                result, note, timeout = await self._execute(code)
            except NoSessionFree as error:
                raise RunStopped("failed", last_error={"code": "rate_limit_exceeded", "message": str(error)})
            except SandboxError as error:
                raise RunStopped("failed", last_error={
                    "code": "server_error", "message": f"The code could not run: {str(error) or type(error).__name__}"})
            _valid_text(result)
            saved = await self.sessions.store_outputs(ts, result, deadline=self.expires_at)
        outputs = []
        if result.text:
            outputs.append({"type": "logs", "logs": result.text})
        outputs += [{"type": "image", "image": {"file_id": f}} for f in saved.images]
        ar.pending_images += saved.images
        text = note + result_for_model(result, saved, timeout)
        tool_step.add_outputs(call, outputs, text)
        return text

    async def _execute(self, code: str) -> tuple[ExecutionResult, str, float | None]:
        """Run the code in the thread's session (a session that closed meanwhile is replaced once),
        never past the run's expires_at: (result, note for the model, the timeout it had)."""
        ar, ts = self.ar, self.thread_session
        for attempt in (1, 2):
            async with self._until_expiry():
                sandbox = await self.sessions.sandbox(ts)
            note = ""
            if ts.state_lost:
                note = ("[note: this thread's earlier session ended (it expired, was closed to make room for "
                        "other sessions, or the server restarted); "
                        "variables and files made in it are gone, input files were copied again]\n")
                ts.state_lost = False
            if ar.cancel_requested:
                raise RunCancelled()
            timeout, left = self.exec_timeout, self._seconds_left()
            if left is not None:
                if left <= 0:
                    raise RunStopped("expired")
                timeout = left if timeout is None else min(timeout, left)
            ar.executing = sandbox
            try:
                return await sandbox.execute(code, timeout=timeout), note, timeout
            except SessionClosed:
                if attempt == 2:
                    raise
                self.sessions.forget_sandbox(ts)
            finally:
                ar.executing = None
        raise AssertionError("unreachable")

    async def _require_action(self, functions: list[dict]) -> None:
        action = {"type": "submit_tool_outputs",
                  "submit_tool_outputs": {"tool_calls": [_tool_call_summary(c) for c in functions]}}
        async with self.db.session() as s:
            run = await s.get(Run, self.ar.id)
            if run.status == "cancelling" or self.ar.cancel_requested:
                raise RunCancelled()
            run.status = "requires_action"
            run.required_action = action
            run.usage = dict(self.ar.usage) if self.ar.usage is not None else run.usage
            await s.commit()
            run_dict = run_to_dict(run)
        self.ar.awaiting_outputs_until = run.expires_at or now()
        self.ar.publish("thread.run.requires_action", run_dict)



def _row(columns: dict) -> SimpleNamespace:
    """A step's or message's columns, to be read as the *_to_dict functions read a row."""
    values = dict(columns)
    values["metadata_"] = values.pop("metadata")
    return SimpleNamespace(**values)


def _changes(columns: dict) -> dict:
    """The parameters of UPDATE_STEP or UPDATE_MESSAGE: what a later write may change."""
    changes = {k: v for k, v in columns.items()
               if k not in ("id", "project_id", "run_id", "thread_id", "assistant_id", "position", "type", "role")}
    changes["row_id"] = columns["id"]
    return changes


def _past(expires_at: int | None) -> bool:
    return expires_at is not None and now() >= expires_at


def _valid_text(result: ExecutionResult) -> None:
    """Make the text a sandbox sent valid UTF-8 (it is stored, streamed and sent to the model)."""
    for output in result.outputs:
        output.text = valid_utf8(output.text)
        output.ename = output.ename and valid_utf8(output.ename)
        output.evalue = output.evalue and valid_utf8(output.evalue)


def _ran_code(messages: list[dict]) -> bool:
    return any(call["function"]["name"] == TOOL_NAME
               for m in messages for call in m.get("tool_calls") or [])


def _chat_tool_call(step: ToolStepWriter, call: ToolCallState) -> dict:
    entry = step.details["tool_calls"][call.index]
    if entry["type"] == "code_interpreter":
        arguments = json.dumps({"code": entry["code_interpreter"]["input"]})
    else:
        arguments = entry["function"]["arguments"]
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def _usage(usage: dict | None) -> dict | None:
    if not usage:
        return None
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": int(usage.get("total_tokens") or prompt_tokens + completion_tokens)}


class _RunConfig:
    """The run's settings, turned into Chat Completions request fields."""

    def __init__(self, run: Run) -> None:
        self.model = run.model
        self.tools = run.tools or []
        self.function_names = {t["function"]["name"] for t in self.tools if t.get("type") == "function"}
        self.has_code = any(t.get("type") == "code_interpreter" for t in self.tools)
        self.temperature = run.temperature
        self.top_p = run.top_p
        self.max_prompt_tokens = run.max_prompt_tokens
        self.max_completion_tokens = run.max_completion_tokens
        self.tool_choice = run.tool_choice
        self.parallel_tool_calls = run.parallel_tool_calls
        self.response_format = run.response_format
        self.expires_at = run.expires_at
        self.usage = run.usage

    def chat_tools(self) -> list[dict]:
        tools = [TOOL_DEFINITION] if self.has_code else []
        for t in self.tools:
            if t.get("type") == "function":
                function = {k: v for k, v in t["function"].items() if v is not None}
                tools.append({"type": "function", "function": function})
        return tools

    def chat_tool_choice(self):
        choice = self.tool_choice
        if choice in (None, "auto"):
            return None
        if isinstance(choice, str):
            return choice
        if choice.get("type") == "code_interpreter":
            return {"type": "function", "function": {"name": TOOL_NAME}}
        return {"type": "function", "function": {"name": choice["function"]["name"]}}

    def chat_body(self, messages: list[dict], usage: dict) -> dict:
        body: dict = {"model": self.model, "messages": messages}
        tools = self.chat_tools()
        if tools:
            body["tools"] = tools
            choice = self.chat_tool_choice()
            if choice is not None:
                body["tool_choice"] = choice
            if not self.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.max_completion_tokens:
            remaining = self.max_completion_tokens - usage["completion_tokens"]
            if remaining <= 0:
                raise RunStopped("incomplete", incomplete_reason="max_completion_tokens")
            body["max_tokens"] = remaining
        if isinstance(self.response_format, dict) and self.response_format.get("type") != "text":
            body["response_format"] = self.response_format
        return body

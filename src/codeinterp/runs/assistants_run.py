"""One leg of an Assistants run: the turn loop, recorded as messages, run steps and events.

A leg starts when a run is created (or resumed by `submit_tool_outputs`) and ends when the
run completes, needs tool outputs, fails, is cancelled, expires or becomes incomplete. `RunLeg`
builds the prompt from the thread and drives a `TurnLoop` on the thread's code session;
`AssistantsRecorder` turns what the loop tells it into rows and `thread.run.*` events.
"""

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from codeinterp import metrics
from codeinterp.upstream.client import ChatClient
from codeinterp.runs import prompt
from codeinterp.runs.assistants_steps import START_RUN, MessageWriter, ToolStepWriter
from codeinterp.runs.events import EventChannel
from codeinterp.runs.python_tool import TOOL_NAME
from codeinterp.runs.code_executor import ThreadCodeExecutor
from codeinterp.runs.container_state import ThreadContainer
from codeinterp.runs.containers import Containers
from codeinterp.runs.turn_loop import Cancelled, CodeRun, ToolCall, TurnLoop, TurnObserver, TurnParameters
from codeinterp.sandbox.types import OutputEvent
from codeinterp.store.assistants import Assistant
from codeinterp.store.threads import Message, Thread, message_to_dict
from codeinterp.store.db import Database
from codeinterp.store.files import File
from codeinterp.store.ids import now
from codeinterp.store.runs import Run, RunStep, run_to_dict, step_to_dict

TOOL_RESOURCES = select(
    select(Assistant.tool_resources).where(Assistant.id == bindparam("assistant_id")).scalar_subquery(),
    select(Thread.tool_resources).where(Thread.id == bindparam("thread_id")).scalar_subquery())
# A leg still going on this long after the run's expires_at is stopped wherever it waits. Every wait
# has its own deadline at expires_at (an execution's timeout ends there); this one catches the rest.
LEG_DEADLINE_GRACE_SECONDS = 10.0

log = logging.getLogger(__name__)


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
    turn: TurnLoop | None = None  # the leg's loop while it runs
    pending_images: list[str] = field(default_factory=list)  # image file ids not yet in a message
    produced: set[str] = field(default_factory=set)  # ids of the files the run's code saved
    message: MessageWriter | None = None
    tool_step: ToolStepWriter | None = None
    expiry: asyncio.TimerHandle | None = None
    position: int = 0  # next step position
    usage: dict | None = None  # the run's token counts so far; written to the run when a leg ends
    awaiting_outputs_until: int | None = None  # the leg ended waiting for tool outputs, until the run's expiry

    def publish(self, name: str, data: dict) -> None:
        self.channel.publish(name, data)
        metrics.run_event(name, data)

    @property
    def executing(self) -> bool:
        return self.turn is not None and self.turn.executing


class AssistantsRecorder(TurnObserver):
    """Writes what the turn loop does as the run's messages and steps, and publishes each change."""

    def __init__(self, ar: ActiveRun, db: Database, thread_container: ThreadContainer) -> None:
        self.ar = ar
        self.db = db
        self.thread_container = thread_container

    def next_position(self) -> int:
        self.ar.position += 1
        return self.ar.position

    def paths(self) -> dict[str, str]:
        return self.thread_container.paths()

    async def _open_message(self) -> MessageWriter:
        images, self.ar.pending_images = self.ar.pending_images, []
        self.ar.message = MessageWriter(self, images, self.ar.produced)
        self.ar.message.open()
        return self.ar.message

    async def text_delta(self, text: str) -> None:
        message = self.ar.message or await self._open_message()
        message.add_text(text)

    async def tool_calls_begin(self) -> None:
        if self.ar.message is not None:
            await self.ar.message.close("completed")
        ToolStepWriter(self).open()

    async def tool_call_named(self, call: ToolCall) -> None:
        self.ar.tool_step.named(call)

    async def code_delta(self, call: ToolCall, text: str) -> None:
        self.ar.tool_step.code_delta(call, text)

    async def arguments_delta(self, call: ToolCall, fragment: str) -> None:
        self.ar.tool_step.arguments_delta(call, fragment)

    async def tool_calls_complete(self, calls: list[ToolCall], usage: dict | None) -> None:
        if self.ar.message is not None:
            await self.ar.message.close("completed")
        self.ar.tool_step.complete(calls)
        self.ar.tool_step.save_soon(usage)

    async def code_output(self, call: ToolCall, event: OutputEvent) -> None:
        self.ar.tool_step.code_output(call, event)

    async def code_done(self, call: ToolCall, run: CodeRun) -> None:
        self.ar.tool_step.add_outputs(call, run)
        self.ar.pending_images += run.saved.images
        generated = self.thread_container.generated
        self.ar.produced.update(run.saved.images, (generated[p] for p in run.saved.files if p in generated))

    async def function_output(self, call: ToolCall, text: str) -> None:
        self.ar.tool_step.function_output(call, text)

    async def tool_calls_end(self, usage: dict | None, finished: bool) -> None:
        await self.ar.tool_step.save("completed" if finished else "in_progress", usage=usage)

    async def requires_action(self, calls: list[ToolCall], usage: dict) -> None:
        entries = self.ar.tool_step.details["tool_calls"]
        action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": entries[call.index]["function"]["arguments"]}}
            for call in calls]}}
        async with self.db.session() as s:
            run = await s.get(Run, self.ar.id)
            if run.status == "cancelling" or self.ar.cancel_requested:
                raise Cancelled()
            run.status = "requires_action"
            run.required_action = action
            run.usage = dict(usage)
            await s.commit()
            run_dict = run_to_dict(run)
        self.ar.awaiting_outputs_until = run.expires_at or now()
        self.ar.publish("thread.run.requires_action", run_dict)

    async def answer_complete(self, usage: dict | None, total_usage: dict) -> None:
        message = self.ar.message or await self._open_message()  # an empty answer still becomes a message
        await message.close("completed", usage=usage, run_usage=total_usage, complete_run=True)

    async def answer_incomplete(self, usage: dict | None) -> None:
        if self.ar.message is not None:
            await self.ar.message.close("incomplete", usage=usage, incomplete_reason="max_tokens",
                                        step_status="completed")
        if self.ar.tool_step is not None:
            await self.ar.tool_step.save("completed", usage=usage)


class RunLeg:
    def __init__(self, ar: ActiveRun, db: Database, containers: Containers, client: ChatClient,
                 exec_timeout: float | None) -> None:
        self.ar = ar
        self.db = db
        self.containers = containers
        self.client = client
        self.exec_timeout = exec_timeout
        self.thread_container: ThreadContainer = containers.get(ar.project_id, ar.thread_id)

    async def run(self) -> None:
        """Start the leg (status in_progress) and drive the run until the leg ends; raises
        Cancelled / Stopped / UpstreamError."""
        ar, ts = self.ar, self.thread_container
        async with self.db.transaction() as c:
            run = (await c.execute(START_RUN, {"row_id": ar.id, "now": now()})).one_or_none()
            if run is None or ar.cancel_requested:
                raise Cancelled()
        async with self.db.transaction() as c:
            rows = await prompt.message_rows(c, run.project_id, run.thread_id)
            ts.assign_inputs(await self._input_files(c, run, rows))
            paths_by_file = {f.file_id: f.path for f in ts.inputs.values()}
            system = prompt.system_message(run, ts.listed_paths(), self.containers.settings.prompt_max_files)
            messages = [system] if system else []
            messages += await prompt.thread_messages(c, run, rows, paths_by_file, ts.ended_runs)
        if ts.sandbox is None and _ran_code(messages):
            ts.state_lost = True  # code ran here before, in a session that is gone
        ar.publish("thread.run.in_progress", run_to_dict(run))
        ar.turn = TurnLoop(
            self.client, parameters_from_run(run), ThreadCodeExecutor(self.containers, ts),
            AssistantsRecorder(ar, self.db, ts), exec_timeout=self.exec_timeout, deadline=run.expires_at,
            cancelled=lambda: ar.cancel_requested, usage=run.usage,
            deadline_grace=LEG_DEADLINE_GRACE_SECONDS + self.containers.settings.sandbox_interrupt_grace_seconds)
        ar.usage = ar.turn.usage
        await ar.turn.run(messages)

    async def _input_files(self, c: AsyncConnection, run: Run, rows: list) -> list[tuple[str, str]]:
        """(file id, filename) of the assistant's, the thread's and the messages' code files, in order."""
        ids: list[str] = []
        owners = (await c.execute(TOOL_RESOURCES, {"assistant_id": run.assistant_id,
                                                   "thread_id": run.thread_id})).one()
        for resources in owners:  # None for an assistant deleted since
            ids += ((resources or {}).get("code_interpreter") or {}).get("file_ids") or []
        for row in rows:
            ids += [a["file_id"] for a in row.attachments or [] if a.get("file_id")]
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        names = dict((await c.execute(select(File.id, File.filename).where(
            File.project_id == run.project_id, File.id.in_(unique)))).all())
        return [(i, names[i]) for i in unique if i in names]


def parameters_from_run(run: Run) -> TurnParameters:
    """The run's settings as the turn loop takes them."""
    tools = run.tools or []
    return TurnParameters(
        model=run.model,
        has_code=any(t.get("type") == "code_interpreter" for t in tools),
        functions=[t["function"] for t in tools if t.get("type") == "function"],
        tool_choice=run.tool_choice, parallel_tool_calls=run.parallel_tool_calls,
        temperature=run.temperature, top_p=run.top_p, max_prompt_tokens=run.max_prompt_tokens,
        max_completion_tokens=run.max_completion_tokens, response_format=run.response_format)


def _ran_code(messages: list[dict]) -> bool:
    return any(call["function"]["name"] == TOOL_NAME
               for m in messages for call in m.get("tool_calls") or [])


async def end_run(db: Database, ar: ActiveRun, status: str, last_error: dict | None = None,
                  incomplete_reason: str | None = None) -> dict:
    """End the run with `status`, closing its open message and steps; publishes the events."""
    t = now()
    step_status = {"cancelled": "cancelled", "expired": "expired", "incomplete": "cancelled"}.get(status, "failed")
    message_reason = {"cancelled": "run_cancelled", "expired": "run_expired",
                      "incomplete": "max_tokens"}.get(status, "run_failed")
    step_error = last_error if step_status == "failed" else None
    if ar.message is not None:
        try:
            await ar.message.close("incomplete", incomplete_reason=message_reason,
                                   step_status=step_status, last_error=step_error)
        except Exception:
            log.exception("closing the message of run %s failed", ar.id)
    if ar.tool_step is not None and not ar.tool_step.inserted:
        try:
            await ar.tool_step.save()  # written now, then ended with the others below
        except Exception:
            log.exception("storing the tool step of run %s failed", ar.id)
    async with db.session() as s:
        steps = (await s.execute(select(RunStep).where(RunStep.run_id == ar.id,
                                                       RunStep.status == "in_progress")
                                 .order_by(RunStep.position))).scalars().all()
        for step in steps:
            step.status = step_status
            step.last_error = step_error
            setattr(step, {"cancelled": "cancelled_at", "expired": "expired_at",
                           "failed": "failed_at"}[step_status], t)
        messages = (await s.execute(select(Message).where(Message.run_id == ar.id,
                                                          Message.status == "in_progress"))).scalars().all()
        for m in messages:
            m.status = "incomplete"
            m.incomplete_at = t
            m.incomplete_details = {"reason": message_reason}
        run = await s.get(Run, ar.id)
        run.status = status
        run.required_action = None
        if ar.usage is not None:
            run.usage = dict(ar.usage)
        if status == "failed":
            run.failed_at = t
            run.last_error = last_error
        elif status == "cancelled":
            run.cancelled_at = t
        elif status == "incomplete":
            run.incomplete_details = {"reason": incomplete_reason}
        await s.commit()
        step_dicts = [step_to_dict(step) for step in steps]
        message_dicts = [message_to_dict(m) for m in messages]
        run_dict = run_to_dict(run)
    for message in message_dicts:
        ar.publish("thread.message.incomplete", message)
    for step in step_dicts:
        ar.publish(f"thread.run.step.{step_status}", step)
    ar.publish(f"thread.run.{status}", run_dict)
    return run_dict

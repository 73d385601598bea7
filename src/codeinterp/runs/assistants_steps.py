"""The Assistants API's record of a run: the assistant message being written and the tool_calls
step being written, as rows (messages, run_steps) and as `thread.run.*` events.

A step or message that finishes within STEP_WRITE_DELAY_SECONDS is written once, finished;
one that takes longer is written in_progress first. Every change is written before it is
published.
"""

import asyncio
import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from codeinterp.runs.annotations import file_path_annotations
from codeinterp.runs.turn_loop import Cancelled, CodeRun, ToolCall
from codeinterp.sandbox.types import OutputEvent, text_piece
from codeinterp.store.threads import Message, message_to_dict
from codeinterp.store.ids import new_id, now
from codeinterp.store.runs import RUN_COLUMNS, Run, RunStep, run_to_dict, step_to_dict

log = logging.getLogger(__name__)

# The statements of every run, built once (building one costs more than running it on SQLite).
# Inserts take the row's columns; updates set the columns passed besides `row_id`.
INSERT_STEP = insert(RunStep)
INSERT_MESSAGE = insert(Message)
UPDATE_STEP = update(RunStep).where(RunStep.id == bindparam("row_id"))
UPDATE_MESSAGE = update(Message).where(Message.id == bindparam("row_id"))
UPDATE_RUN = update(Run).where(Run.id == bindparam("row_id"))
START_RUN = (update(Run).where(Run.id == bindparam("row_id"), Run.status == "queued")  # not if cancelled meanwhile
             .values(status="in_progress", started_at=func.coalesce(Run.started_at, bindparam("now")))
             .returning(*RUN_COLUMNS))
COMPLETE_RUN = UPDATE_RUN.where(Run.status != "cancelling").returning(*RUN_COLUMNS)

# A step or message still going on after this long is written as in_progress; a quicker one is
# written once, finished.
STEP_WRITE_DELAY_SECONDS = 0.1
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


def _new_step(recorder, step_id: str, step_type: str, details: dict) -> dict:
    """The columns of a step that begins now."""
    ar = recorder.ar
    return {"id": step_id, "project_id": ar.project_id, "run_id": ar.id, "thread_id": ar.thread_id,
            "assistant_id": ar.assistant_id, "position": recorder.next_position(), "type": step_type,
            "status": "in_progress", "created_at": now(), "step_details": details, "tool_results": {},
            "metadata": {}, "last_error": None, "expired_at": None, "cancelled_at": None, "failed_at": None,
            "completed_at": None, "usage": None}


class MessageWriter(WrittenSoon):
    """An assistant message being written: its message_creation step and streamed text."""

    def __init__(self, recorder, images: list[str], produced: set[str]) -> None:
        super().__init__()
        self.recorder = recorder
        self.id = new_id("msg")
        self.step_id = new_id("step")
        self.images = images
        self.produced = produced  # ids of the files the run's code saved so far
        self.text = ""

    @property
    def text_index(self) -> int:
        return len(self.images)

    def open(self) -> None:
        """Announce the message and its step; they are written in a moment, or when the message ends."""
        ar = self.recorder.ar
        self.step = _new_step(self.recorder, self.step_id, "message_creation",
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
        async with self.recorder.db.transaction() as c:
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
        self.recorder.ar.publish("thread.message.delta",
                             self._delta([{"index": self.text_index, "type": "text", "text": block}]))

    def content(self, annotations: list[dict]) -> list[dict]:
        blocks = [{"type": "image_file", "image_file": {"file_id": f, "detail": "auto"}} for f in self.images]
        blocks.append({"type": "text", "text": {"value": self.text, "annotations": annotations}})
        return blocks

    def attachments(self, annotations: list[dict]) -> list[dict]:
        """The files the run produced that the message shows or links, once each, as OpenAI lists
        them (clients that flatten a message to text find generated files only there)."""
        referred = self.images + [a["file_path"]["file_id"] for a in annotations]
        return [{"file_id": f, "tools": [{"type": "code_interpreter"}]}
                for f in dict.fromkeys(referred) if f in self.produced]

    async def close(self, status: str, usage: dict | None = None, incomplete_reason: str | None = None,
                    step_status: str | None = None, last_error: dict | None = None,
                    run_usage: dict | None = None, complete_run: bool = False) -> None:
        """Finish the message (`completed` or `incomplete`) and its step; with `complete_run`, the
        run too, in the same transaction (raises Cancelled if the run is being cancelled)."""
        ar, t = self.recorder.ar, now()
        annotations = file_path_annotations(self.text, self.recorder.paths())
        if annotations and status == "completed":
            ar.publish("thread.message.delta", self._delta([{
                "index": self.text_index, "type": "text",
                "text": {"annotations": [dict(a, index=n) for n, a in enumerate(annotations)]}}]))
        step_status = step_status or ("completed" if status == "completed" else "cancelled")
        message, step = self.message, self.step
        message.update(content=self.content(annotations), attachments=self.attachments(annotations), status=status)
        if status == "completed":
            message["completed_at"] = t
        else:
            message.update(incomplete_at=t, incomplete_details={"reason": incomplete_reason})
        step.update(status=step_status, usage=usage, last_error=last_error)
        step[_STEP_TIME_FIELD[step_status]] = t
        async with self.writing(), self.recorder.db.transaction() as c:
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
                raise Cancelled()
            ar.publish("thread.run.completed", run_to_dict(run))


_STEP_TIME_FIELD = {"completed": "completed_at", "cancelled": "cancelled_at", "failed": "failed_at",
                    "expired": "expired_at"}


class ToolStepWriter(WrittenSoon):
    """A tool_calls step being written: its calls stream in, then each code call's output, live."""

    def __init__(self, recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.id = new_id("step")
        self.details: dict = {"type": "tool_calls", "tool_calls": []}
        self.tool_results: dict[str, str] = {}
        self._logs: dict[int, str] = {}  # call index -> logs published so far

    def open(self) -> None:
        """Announce the step; its row is written with the calls once the model's answer is complete."""
        ar = self.recorder.ar
        self.step = _new_step(self.recorder, self.id, "tool_calls", self.details)
        ar.tool_step = self
        step_dict = step_to_dict(_row(self.step))
        ar.publish("thread.run.step.created", step_dict)
        ar.publish("thread.run.step.in_progress", step_dict)

    def _publish(self, call: dict) -> None:
        self.recorder.ar.publish("thread.run.step.delta", {
            "id": self.id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}}})

    def named(self, call: ToolCall) -> None:
        if call.is_code:
            entry = {"id": call.id, "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}
        else:
            entry = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": "", "output": None}}
        self.details["tool_calls"].append(entry)
        self._publish(dict(entry, index=call.index))

    def code_delta(self, call: ToolCall, text: str) -> None:
        self.details["tool_calls"][call.index]["code_interpreter"]["input"] += text
        self._publish({"index": call.index, "type": "code_interpreter", "code_interpreter": {"input": text}})

    def arguments_delta(self, call: ToolCall, fragment: str) -> None:
        self.details["tool_calls"][call.index]["function"]["arguments"] += fragment
        self._publish({"index": call.index, "type": "function", "function": {"arguments": fragment}})

    def complete(self, calls: list[ToolCall]) -> None:
        """The calls as the model's whole answer has them (whatever the deltas left out)."""
        for call in calls:
            entry = self.details["tool_calls"][call.index]
            if call.is_code:
                entry["code_interpreter"]["input"] = call.code.code
            else:
                entry["function"]["arguments"] = call.arguments

    def code_output(self, call: ToolCall, event: OutputEvent) -> None:
        """The code's output while it runs, as the `logs` output (index 0) growing."""
        so_far = self._logs.get(call.index, "")
        piece = text_piece(so_far, event)
        if piece:
            self._logs[call.index] = so_far + piece
            self._publish({"index": call.index, "type": "code_interpreter",
                           "code_interpreter": {"outputs": [{"index": 0, "type": "logs", "logs": piece}]}})

    def function_output(self, call: ToolCall, text: str) -> None:
        self.details["tool_calls"][call.index]["function"]["output"] = text

    def add_outputs(self, call: ToolCall, run: CodeRun) -> None:
        """The code ended: its whole logs and its images; the images (and any logs not yet sent) are
        published."""
        text = run.result.text
        outputs = [{"type": "logs", "logs": text}] if text else []
        outputs += [{"type": "image", "image": {"file_id": f}} for f in run.saved.images]
        entry = self.details["tool_calls"][call.index]
        entry["code_interpreter"]["outputs"] = outputs
        self.tool_results[call.id] = run.text
        sent = self._logs.pop(call.index, "")
        new = [dict(o, index=n) for n, o in enumerate(outputs) if o["type"] == "image"]
        if text != sent and text.startswith(sent):
            new.insert(0, {"index": 0, "type": "logs", "logs": text[len(sent):]})
        if new:
            self._publish({"index": call.index, "type": "code_interpreter", "code_interpreter": {"outputs": new}})

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
        async with self.recorder.db.transaction() as c:
            await c.execute(*((UPDATE_STEP, _changes(step)) if self.inserted else (INSERT_STEP, step)))
        self.inserted = True
        step_dict = step_to_dict(_row(step))
        if status != "in_progress":
            self.recorder.ar.publish(f"thread.run.step.{status}", step_dict)
            if self.recorder.ar.tool_step is self:
                self.recorder.ar.tool_step = None
        return step_dict


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



"""A response in progress: the turn loop, recorded as output items and `response.*` events.

`ResponsesRecorder` is the turn loop's observer for the Responses API (the Assistants recorder
is the other): each model answer becomes a `message` item, each code call a
`code_interpreter_call` item and each function call a `function_call` item, published as the
streaming events name them (every event carries `sequence_number`, from 0 up by one) and
stored as rows when the response ends (until then, `ActiveResponse.as_dict` is the response).
"""

import asyncio
import base64
from dataclasses import dataclass, field

from codeinterp.runs.annotations import SANDBOX_LINK, container_file_citation, container_file_citations
from codeinterp.runs.events import EventChannel
from codeinterp.runs.turn_loop import CodeExecutor, CodeRun, ToolCall, TurnLoop, TurnObserver
from codeinterp.sandbox.types import OutputEvent
from codeinterp.store import responses as store
from codeinterp.store.ids import new_id

END_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})


@dataclass
class ActiveResponse:
    """What the engine knows of a response while it is not finished."""

    id: str
    project_id: str
    row: store.Response  # the stored row, kept current in memory
    include: set[str]
    container_id: str | None = None
    channel: EventChannel = field(default_factory=lambda: EventChannel(END_EVENTS))
    output: list[dict] = field(default_factory=list)  # output items so far, in order
    model_texts: dict[str, str] = field(default_factory=dict)  # item id -> what the model read after it
    sequence: int = 0  # of the next event
    task: asyncio.Task | None = None
    executor: CodeExecutor | None = None  # the container's, once known
    turn: TurnLoop | None = None
    cancel_requested: bool = False
    finishing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, kind: str, **fields) -> None:
        self.channel.publish(kind, {"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1

    def view(self, item: dict) -> dict:
        return store.item_view(item, self.include)

    def as_dict(self) -> dict:
        return store.response_to_dict(self.row, self.output, self.include)

    @property
    def executing(self) -> bool:
        return self.turn is not None and self.turn.executing


class ResponsesRecorder(TurnObserver):
    def __init__(self, ar: ActiveResponse, container_files) -> None:
        self.ar = ar
        self.container_files = container_files  # async () -> {path: cfile id} of the container now
        self.message: dict | None = None  # the open message item
        self.calls: dict[int, dict] = {}  # call index -> its open item (this answer's calls)
        self.waiting_code: list[ToolCall] = []  # code calls of this answer not yet run
        self.images: list[str] = []  # cfile ids of images displayed since the last message
        self.saved_paths: dict[str, str] = {}  # files the code wrote during this response: path -> cfile id

    # ---- items ---------------------------------------------------------------------------------

    def _add_item(self, item: dict) -> int:
        self.ar.output.append(item)
        index = len(self.ar.output) - 1
        self.ar.emit("response.output_item.added", output_index=index, item=self.ar.view(item))
        return index

    async def _item_done(self, item: dict, model_text: str | None = None) -> None:
        if model_text is not None:
            self.ar.model_texts[item["id"]] = model_text
        self.ar.emit("response.output_item.done", output_index=self.ar.output.index(item), item=self.ar.view(item))

    def _open_message(self) -> dict:
        self.message = {"id": new_id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                        "content": []}
        index = self._add_item(self.message)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self.message["content"].append(part)
        self.ar.emit("response.content_part.added", item_id=self.message["id"], output_index=index,
                     content_index=0, part=part)
        return self.message

    async def close_message(self, status: str = "completed") -> None:
        message, self.message = self.message, None
        if message is None:
            return
        index = self.ar.output.index(message)
        part = message["content"][0]
        if status == "completed":
            citations = []
            if SANDBOX_LINK.search(part["text"]):
                files = dict(await self.container_files()) | self.saved_paths
                citations = container_file_citations(part["text"], files, self.ar.container_id or "")
            citations += [container_file_citation(self.ar.container_id, image, f"{image}.png")
                          for image in self.images]
            self.images = []
            for n, annotation in enumerate(citations):
                part["annotations"].append(annotation)
                self.ar.emit("response.output_text.annotation.added", item_id=message["id"], output_index=index,
                             content_index=0, annotation_index=n, annotation=annotation)
        self.ar.emit("response.output_text.done", item_id=message["id"], output_index=index, content_index=0,
                     text=part["text"], logprobs=[])
        self.ar.emit("response.content_part.done", item_id=message["id"], output_index=index, content_index=0,
                     part=part)
        message["status"] = status
        await self._item_done(message)

    async def close_open_items(self) -> None:
        """The response ends early: what is still open ends `incomplete`."""
        await self.close_message("incomplete")
        for item in self.calls.values():
            if item["status"] not in ("completed", "failed"):
                item["status"] = "incomplete"
                await self._item_done(item)
        self.calls.clear()

    # ---- what the turn loop tells ------------------------------------------------------------------

    async def text_delta(self, text: str) -> None:
        message = self.message or self._open_message()
        message["content"][0]["text"] += text
        self.ar.emit("response.output_text.delta", item_id=message["id"], output_index=self.ar.output.index(message),
                     content_index=0, delta=text, logprobs=[])

    async def tool_calls_begin(self) -> None:
        await self.close_message()

    async def tool_call_named(self, call: ToolCall) -> None:
        if call.is_code:
            item = {"id": new_id("ci"), "type": "code_interpreter_call", "status": "in_progress", "code": "",
                    "container_id": self.ar.container_id, "outputs": None}
            index = self._add_item(item)
            self.ar.emit("response.code_interpreter_call.in_progress", item_id=item["id"], output_index=index)
        else:
            item = {"id": new_id("fc"), "type": "function_call", "call_id": call.id, "name": call.name,
                    "arguments": "", "status": "in_progress"}
            self._add_item(item)
        self.calls[call.index] = item

    async def code_delta(self, call: ToolCall, text: str) -> None:
        item = self.calls[call.index]
        item["code"] += text
        self.ar.emit("response.code_interpreter_call_code.delta", item_id=item["id"],
                     output_index=self.ar.output.index(item), delta=text)

    async def arguments_delta(self, call: ToolCall, fragment: str) -> None:
        item = self.calls[call.index]
        item["arguments"] += fragment
        self.ar.emit("response.function_call_arguments.delta", item_id=item["id"],
                     output_index=self.ar.output.index(item), delta=fragment)

    async def tool_calls_complete(self, calls: list[ToolCall], usage: dict | None) -> None:
        await self.close_message()
        self.waiting_code = [call for call in calls if call.is_code]
        for call in calls:
            item = self.calls[call.index]
            index = self.ar.output.index(item)
            if call.is_code:
                item["code"] = call.code.code
                self.ar.emit("response.code_interpreter_call_code.done", item_id=item["id"], output_index=index,
                             code=item["code"])
            else:
                item["arguments"] = call.arguments
                self.ar.emit("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                             name=item["name"], arguments=item["arguments"])
        self._next_interpreting()

    def _next_interpreting(self) -> None:
        if self.waiting_code:
            item = self.calls[self.waiting_code[0].index]
            item["status"] = "interpreting"
            self.ar.emit("response.code_interpreter_call.interpreting", item_id=item["id"],
                         output_index=self.ar.output.index(item))

    async def code_output(self, call: ToolCall, event: OutputEvent) -> None:
        """Output is delivered whole with the call's item when the code ends."""

    async def code_done(self, call: ToolCall, run: CodeRun) -> None:
        item = self.calls[call.index]
        outputs: list[dict] = []
        logs = run.result.text  # stdout, stderr, the last value, the traceback, in order
        if logs:
            outputs.append({"type": "logs", "logs": logs})
        for o in run.result.outputs:
            if o.kind == "image":
                outputs.append({"type": "image", "url": "data:image/png;base64," + base64.b64encode(o.png).decode()})
        item["outputs"] = outputs
        if self.ar.cancel_requested:  # interrupted by the cancel
            item["status"] = "incomplete"
        else:
            item["status"] = "failed" if run.result.status in ("killed", "crashed") else "completed"
        self.images += run.saved.images
        self.saved_paths.update(getattr(run.saved, "file_ids", {}) or {})
        self.ar.emit("response.code_interpreter_call.completed", item_id=item["id"],
                     output_index=self.ar.output.index(item))
        await self._item_done(item, model_text=run.text)
        if self.waiting_code and self.waiting_code[0] is call:
            self.waiting_code.pop(0)
        self._next_interpreting()

    async def function_output(self, call: ToolCall, text: str) -> None:
        item = self.calls[call.index]
        item["status"] = "completed"
        await self._item_done(item, model_text=text)

    async def tool_calls_end(self, usage: dict | None, finished: bool) -> None:
        if finished:
            self.calls.clear()

    async def requires_action(self, calls: list[ToolCall], usage: dict) -> None:
        for call in calls:
            item = self.calls[call.index]
            item["status"] = "completed"
            await self._item_done(item)
        self.calls.clear()

    async def answer_complete(self, usage: dict | None, total_usage: dict) -> None:
        if self.message is None:
            self._open_message()
        await self.close_message()

    async def answer_incomplete(self, usage: dict | None) -> None:
        await self.close_message("incomplete")

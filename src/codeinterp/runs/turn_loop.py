"""The model <-> code loop, from plain inputs, for any API surface.

`TurnLoop.run(messages)` asks the model (a `ChatClient`) what to do with the chat messages so
far; when it calls the code tool, the code runs on a `CodeExecutor` (a thread's or a container's
sandbox session) and its result goes back to the model, until the model answers with text, calls
function tools whose outputs the caller must supply, or a limit stops it. Everything that
happens is told to a `TurnObserver` as it happens (text as it streams, tool calls as they
stream, code output while the code runs), which records it in the API's own terms: the
Assistants recorder writes messages and run steps and publishes `thread.run.*` events. This
module knows no table and no event name.
"""

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from codeinterp.upstream.client import ChatClient, Completion, TextDelta, ToolCallDelta, UpstreamError
from codeinterp.runs.python_tool import TOOL_DEFINITION, TOOL_NAME, SavedOutputs, StreamedCode, result_for_model
from codeinterp.sandbox.interface import OutputCallback
from codeinterp.sandbox.types import ExecutionResult, OutputEvent, SandboxError
from codeinterp.store.ids import new_id
from codeinterp.store.text import valid_utf8


class Cancelled(Exception):
    """The caller asked the loop to stop (the user cancelled)."""


class Stopped(Exception):
    """The loop cannot go on; `status` is how the turn ends (failed, expired, incomplete)."""

    def __init__(self, status: str, last_error: dict | None = None, incomplete_reason: str | None = None):
        super().__init__(status)
        self.status = status
        self.last_error = last_error
        self.incomplete_reason = incomplete_reason


class NoSessionFree(Exception):
    """No sandbox session can be had now (a per-project or per-server cap): the turn fails with
    rate_limit_exceeded."""


@dataclass
class ToolCall:
    """One tool call of the model's answer, as it streams in."""

    index: int  # its position among the answer's calls
    id: str
    name: str
    code: StreamedCode = field(default_factory=StreamedCode)  # the code tool's `code`, decoded as it arrives
    arguments: str = ""  # a function tool's arguments (JSON text) so far

    @property
    def is_code(self) -> bool:
        return self.name == TOOL_NAME

    def chat_message_call(self) -> dict:
        arguments = json.dumps({"code": self.code.code}) if self.is_code else self.arguments
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


@dataclass
class CodeRun:
    """What one execution came to, as the loop hands it to the observer."""

    result: ExecutionResult
    saved: SavedOutputs  # image and file ids stored from it, and what was not saved
    text: str  # what the model reads (output, notes, one line per file)


@dataclass
class TurnParameters:
    """The chat request's settings (the caller's run or response, in Chat Completions terms)."""

    model: str
    has_code: bool = True  # the code tool is offered
    functions: list[dict] = field(default_factory=list)  # function tools: {"name", "description", "parameters", ...}
    tool_choice: str | dict | None = None  # "auto", "none", "required", {"type": "code_interpreter"} or a function
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    response_format: dict | str | None = None
    max_code_calls: int | None = None  # code calls run at most (Responses' max_tool_calls); later ones are not run

    @property
    def function_names(self) -> set[str]:
        return {f["name"] for f in self.functions}

    def chat_tool_choice(self):
        choice = self.tool_choice
        if choice in (None, "auto"):
            return None
        if isinstance(choice, str):
            return choice
        if choice.get("type") == "code_interpreter":
            return {"type": "function", "function": {"name": TOOL_NAME}}
        return {"type": "function", "function": {"name": choice["function"]["name"]}}

    def chat_body(self, messages: list[dict], completion_tokens_used: int) -> dict:
        body: dict = {"model": self.model, "messages": messages}
        tools = ([TOOL_DEFINITION] if self.has_code else []) + [
            {"type": "function", "function": {k: v for k, v in f.items() if v is not None}} for f in self.functions]
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
            remaining = self.max_completion_tokens - completion_tokens_used
            if remaining <= 0:
                raise Stopped("incomplete", incomplete_reason="max_completion_tokens")
            body["max_tokens"] = remaining
        if isinstance(self.response_format, dict) and self.response_format.get("type") != "text":
            body["response_format"] = self.response_format
        return body


class CodeExecutor(ABC):
    """Where the code tool's code runs: a sandbox session kept for a thread or a container."""

    @abstractmethod
    async def execute(self, code: str, timeout: float | None, on_output: OutputCallback,
                      deadline: float | None) -> tuple[ExecutionResult, SavedOutputs, str]:
        """Run `code` (at most `timeout` seconds), calling `on_output` as output arrives; store
        what it produced (images, files changed under /mnt/data), not past `deadline` (epoch
        seconds). Returns the result, what was saved, and a note for the model ("" or a line such
        as "the earlier session ended"). Raises `NoSessionFree` when no session can be had,
        `SandboxError` when the code cannot run."""

    @abstractmethod
    async def interrupt(self) -> None:
        """Interrupt the code running now, if any."""

    async def prepare(self) -> None:
        """Get ready for a first `execute` (e.g. start the sandbox session) while the model thinks.
        Never raises: what fails here is met again, and reported, by `execute`."""


class TurnObserver:
    """Told what happens during a turn, in order. Every method may write and publish; the loop
    awaits each. The defaults do nothing."""

    async def text_delta(self, text: str) -> None:
        """New text of the model's answer."""

    async def tool_calls_begin(self) -> None:
        """The model's answer turns to tool calls (text before it, if any, is complete)."""

    async def tool_call_named(self, call: ToolCall) -> None:
        """A tool call is announced (its name is known)."""

    async def code_delta(self, call: ToolCall, text: str) -> None:
        """New text of a code call's code."""

    async def arguments_delta(self, call: ToolCall, fragment: str) -> None:
        """New text of a function call's arguments."""

    async def tool_calls_complete(self, calls: list[ToolCall], usage: dict | None) -> None:
        """The model's answer is complete: these calls, with their whole code or arguments."""

    async def code_output(self, call: ToolCall, event: OutputEvent) -> None:
        """Output of a code call while its code runs (its text is valid UTF-8)."""

    async def code_done(self, call: ToolCall, run: CodeRun) -> None:
        """A code call's code ended (and its files were stored)."""

    async def function_output(self, call: ToolCall, text: str) -> None:
        """A call the loop answered itself (a tool that does not exist)."""

    async def tool_calls_end(self, usage: dict | None, finished: bool) -> None:
        """The answer's calls are done (`finished`), or the loop stops or waits among them."""

    async def requires_action(self, calls: list[ToolCall], usage: dict) -> None:
        """Function calls wait for outputs the caller supplies; the turn ends here."""

    async def answer_complete(self, usage: dict | None, total_usage: dict) -> None:
        """The model answered without tool calls: the turn is complete."""

    async def answer_incomplete(self, usage: dict | None) -> None:
        """A token limit stops the turn after this answer."""


@dataclass
class TurnOutcome:
    status: str  # "completed" or "requires_action"
    usage: dict


ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class TurnLoop:
    """One turn: model answers and code runs until a final answer, a wait for function outputs, or
    a stop (`Cancelled`, `Stopped`, `UpstreamError`)."""

    def __init__(self, client: ChatClient, parameters: TurnParameters, executor: CodeExecutor | None,
                 observer: TurnObserver, exec_timeout: float | None = None, deadline: float | None = None,
                 cancelled: Callable[[], bool] = lambda: False, usage: dict | None = None,
                 deadline_grace: float = 0.0) -> None:
        self.client = client
        self.parameters = parameters
        self.executor = executor
        self.observer = observer
        self.exec_timeout = exec_timeout
        self.deadline = deadline  # epoch seconds: nothing waits past it
        self.deadline_grace = deadline_grace  # the whole turn is stopped this long after the deadline
        self.cancelled = cancelled
        self.usage = dict(usage or ZERO_USAGE)  # the turn's token counts so far (and earlier legs')
        self.usage_details = {"cached_tokens": 0, "reasoning_tokens": 0}  # of this turn's answers
        self.executing = False  # code is running now
        self.code_calls = 0  # code calls run in this turn
        self._preparing: asyncio.Task | None = None  # the executor's `prepare`, once a code call began

    async def run(self, messages: list[dict]) -> TurnOutcome:
        """Drive the turn; `messages` (the chat so far) grows with the answers and tool results."""
        async with self._until_deadline(self.deadline_grace):
            return await self._run(messages)

    async def _run(self, messages: list[dict]) -> TurnOutcome:
        parameters = self.parameters
        while True:
            self._check()
            body = parameters.chat_body(messages, self.usage["completion_tokens"])
            async with self._until_deadline():
                completion, calls = await self._model_answer(body)
            answer_usage = _usage(completion.usage)
            for key in self.usage:
                self.usage[key] += answer_usage.get(key, 0) if answer_usage else 0
            for key, count in _usage_details(completion.usage).items():
                self.usage_details[key] += count
            if parameters.max_prompt_tokens and answer_usage and answer_usage["prompt_tokens"] > parameters.max_prompt_tokens:
                await self.observer.answer_incomplete(answer_usage)
                raise Stopped("incomplete", incomplete_reason="max_prompt_tokens")
            if completion.finish_reason == "length" and parameters.max_completion_tokens:
                await self.observer.answer_incomplete(answer_usage)
                raise Stopped("incomplete", incomplete_reason="max_completion_tokens")
            if not calls:
                await self.observer.answer_complete(answer_usage, self.usage)
                return TurnOutcome("completed", self.usage)

            parameters.tool_choice = "auto"  # a forced tool is forced once
            await self.observer.tool_calls_complete(calls, answer_usage)
            messages.append({"role": "assistant", "content": completion.text or None,
                             "tool_calls": [call.chat_message_call() for call in calls]})
            waiting = []
            for call in calls:
                if call.is_code and self._over_code_calls():
                    text = await self._not_run(call)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                elif call.is_code:
                    text = await self._run_code(call)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                elif call.name in parameters.function_names:
                    waiting.append(call)
                else:
                    text = f"Error: there is no tool named {call.name!r}."
                    await self.observer.function_output(call, text)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
                if self.cancelled() or self._past_deadline():
                    await self.observer.tool_calls_end(answer_usage, finished=False)
                    self._check()
            if waiting:
                await self.observer.tool_calls_end(answer_usage, finished=False)
                await self.observer.requires_action(waiting, self.usage)
                return TurnOutcome("requires_action", self.usage)
            await self.observer.tool_calls_end(answer_usage, finished=True)
            if self._over_code_calls():  # the model is no longer offered the code tool
                parameters.has_code = False

    def prepare_executor(self) -> None:
        """Let the executor get ready (start its session) in the background, once per turn: called
        when the model begins a code call (the code still streams in), or earlier by the caller."""
        if self._preparing is None and self.executor is not None:
            self._preparing = asyncio.create_task(self.executor.prepare())

    def _over_code_calls(self) -> bool:
        return self.parameters.max_code_calls is not None and self.code_calls >= self.parameters.max_code_calls

    async def _not_run(self, call: ToolCall) -> str:
        """A code call past `max_code_calls`: not run; the model and the observer are told so."""
        text = (f"[not run: this response already ran the most code calls it may "
                f"(max_tool_calls={self.parameters.max_code_calls})]")
        result = ExecutionResult(status="error", outputs=[OutputEvent(kind="stderr", text=text)])
        await self.observer.code_done(call, CodeRun(result=result, saved=SavedOutputs(), text=text))
        return text

    def _check(self) -> None:
        if self.cancelled():
            raise Cancelled()
        if self._past_deadline():
            raise Stopped("expired")

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    @asynccontextmanager
    async def _until_deadline(self, grace: float = 0.0):
        """The block is stopped `grace` seconds after the deadline, and the turn expires."""
        left = None if self.deadline is None else self.deadline - time.time()
        timeout = asyncio.timeout(None if left is None else max(0.0, left + grace))
        try:
            async with timeout:
                yield
        except TimeoutError:
            if timeout.expired():
                raise Stopped("expired") from None
            raise

    async def _model_answer(self, body: dict) -> tuple[Completion, list[ToolCall]]:
        assembler = _ToolCalls(self.observer, self.prepare_executor)
        completion: Completion | None = None
        text_seen = False
        async for event in self.client.stream(body):
            if isinstance(event, TextDelta):
                if event.text:
                    text_seen = True
                    await self.observer.text_delta(event.text)
            elif isinstance(event, ToolCallDelta):
                await assembler.delta(event)
            elif isinstance(event, Completion):
                completion = event
        if completion is None:
            raise UpstreamError("The model's answer ended before it was complete.")
        if completion.tool_calls:
            await assembler.complete(completion)
        elif completion.text and not text_seen:  # an answer whose text came only whole
            await self.observer.text_delta(completion.text)
        return completion, assembler.ordered()

    async def _run_code(self, call: ToolCall) -> str:
        timeout = self.exec_timeout
        if self.deadline is not None:
            left = self.deadline - time.time()
            if left <= 0:
                raise Stopped("expired")
            timeout = left if timeout is None else min(timeout, left)

        async def on_output(event: OutputEvent) -> None:
            event.text = valid_utf8(event.text)
            await self.observer.code_output(call, event)

        self.executing = True
        self.code_calls += 1
        try:
            result, saved, note = await self.executor.execute(call.code.code, timeout, on_output, self.deadline)
        except NoSessionFree as error:
            raise Stopped("failed", last_error={"code": "rate_limit_exceeded", "message": str(error)}) from None
        except SandboxError as error:
            raise Stopped("failed", last_error={
                "code": "server_error",
                "message": f"The code could not run: {str(error) or type(error).__name__}"}) from None
        finally:
            self.executing = False
        run = CodeRun(result=result, saved=saved, text=note + result_for_model(result, saved, timeout))
        await self.observer.code_done(call, run)
        return run.text


class _ToolCalls:
    """Assembles an answer's tool calls from their deltas (by upstream index), telling the observer
    as each is named and as its code or arguments grow."""

    def __init__(self, observer: TurnObserver, on_code_call: Callable[[], None] = lambda: None) -> None:
        self.observer = observer
        self.on_code_call = on_code_call  # told when a code call is named, before its code streams in
        self.calls: dict[int, ToolCall] = {}  # upstream index -> call
        self._unnamed: dict[int, tuple[str | None, str]] = {}  # upstream index -> (id, arguments) before the name

    def ordered(self) -> list[ToolCall]:
        return sorted(self.calls.values(), key=lambda c: c.index)

    async def delta(self, delta: ToolCallDelta) -> None:
        call = self.calls.get(delta.index)
        arguments = delta.arguments or ""
        if call is None:
            call_id, early = self._unnamed.pop(delta.index, (None, ""))
            call_id, arguments = delta.id or call_id, early + arguments
            if not delta.name:  # a call is announced once its name is known
                self._unnamed[delta.index] = (call_id, arguments)
                return
            if not self.calls:
                await self.observer.tool_calls_begin()
            call = ToolCall(index=len(self.calls), id=call_id or new_id("call"), name=delta.name)
            self.calls[delta.index] = call
            if call.is_code:
                self.on_code_call()
            await self.observer.tool_call_named(call)
        await self._add(call, arguments)

    async def _add(self, call: ToolCall, fragment: str) -> None:
        if call.is_code:
            new = call.code.feed(fragment)
            if new:
                await self.observer.code_delta(call, new)
        elif fragment:
            call.arguments += fragment
            await self.observer.arguments_delta(call, fragment)

    async def complete(self, completion: Completion) -> None:
        """Make the calls match the assembled answer (whatever the deltas left out)."""
        for n, assembled in enumerate(completion.tool_calls):
            call = self.calls.get(n)
            if call is None:
                await self.delta(ToolCallDelta(index=n, id=assembled.id, name=assembled.name, arguments=""))
                call = self.calls[n]
            if call.is_code:
                rest = call.code.finish(assembled.arguments)
                if rest:
                    await self.observer.code_delta(call, rest)
            elif assembled.arguments.startswith(call.arguments):
                await self._add(call, assembled.arguments[len(call.arguments):])
            else:
                call.arguments = assembled.arguments


def _usage(usage: dict | None) -> dict | None:
    if not usage:
        return None
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": int(usage.get("total_tokens") or prompt_tokens + completion_tokens)}


def _usage_details(usage: dict | None) -> dict:
    """The cached prompt tokens and reasoning tokens an answer reports (0 when it does not)."""
    prompt = (usage or {}).get("prompt_tokens_details") or {}
    completion = (usage or {}).get("completion_tokens_details") or {}
    return {"cached_tokens": int(prompt.get("cached_tokens") or 0),
            "reasoning_tokens": int(completion.get("reasoning_tokens") or 0)}

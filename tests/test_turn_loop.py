"""The turn loop alone: a scripted model in the same process, a test executor and a recording
observer; no database, no HTTP, no sandbox."""

import json
import time

import pytest

from codeinterp.upstream.client import Completion, TextDelta, ToolCall as AssembledCall, ToolCallDelta
from codeinterp.runs.python_tool import SavedOutputs
from codeinterp.runs.turn_loop import (
    Cancelled, CodeExecutor, NoSessionFree, Stopped, TurnLoop, TurnObserver, TurnParameters,
)
from codeinterp.sandbox.types import ExecutionResult, OutputEvent

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class ScriptedModel:
    """Answers each chat request with the next scripted list of stream events."""

    def __init__(self, *answers: list) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    async def stream(self, body: dict):
        self.requests.append(json.loads(json.dumps(body)))
        for event in self.answers.pop(0):
            yield event


def code_call(code: str, call_id: str = "call_1", pieces: int = 3) -> list:
    arguments = json.dumps({"code": code})
    size = len(arguments) // pieces + 1
    chunks = [arguments[i:i + size] for i in range(0, len(arguments), size)]
    return ([ToolCallDelta(index=0, id=call_id, name="python", arguments=chunks[0])]
            + [ToolCallDelta(index=0, id=None, name=None, arguments=chunk) for chunk in chunks[1:]]
            + [Completion(text="", tool_calls=[AssembledCall(call_id, "python", arguments)], finish_reason="tool_calls",
                          usage={"prompt_tokens": 10, "completion_tokens": 5})])


def answer(text: str, finish_reason: str = "stop") -> list:
    return [TextDelta(text[:3]), TextDelta(text[3:]),
            Completion(text=text, finish_reason=finish_reason, usage={"prompt_tokens": 20, "completion_tokens": 2})]


class Executor(CodeExecutor):
    """Runs nothing: prints what it was given, as two pieces of output."""

    def __init__(self, error: Exception | None = None) -> None:
        self.codes: list[str] = []
        self.error = error
        self.interrupted = False

    async def execute(self, code, timeout, on_output, deadline):
        if self.error is not None:
            raise self.error
        self.codes.append(code)
        outputs = [OutputEvent("stdout", "ran: "), OutputEvent("stdout", code + "\n")]
        for output in outputs:
            await on_output(output)
        result = ExecutionResult(status="ok", outputs=[OutputEvent("stdout", "ran: " + code + "\n")])
        return result, SavedOutputs(images=["file-img"]), ""

    async def interrupt(self):
        self.interrupted = True


class Recorder(TurnObserver):
    """Every call the loop makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattribute__(self, name):
        if name in TurnObserver.__dict__ and not name.startswith("_"):
            calls = object.__getattribute__(self, "calls")

            async def record(*args, **kwargs):
                calls.append((name, *args, *kwargs.values()))
            return record
        return object.__getattribute__(self, name)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def loop_for(model, executor=None, **kwargs) -> tuple[TurnLoop, Recorder]:
    recorder = Recorder()
    parameters = kwargs.pop("parameters", TurnParameters(model="m"))
    return TurnLoop(model, parameters, executor or Executor(), recorder, **kwargs), recorder


async def test_a_code_call_then_an_answer():
    model = ScriptedModel(code_call("print(2 + 2)"), answer("The answer is 4."))
    executor = Executor()
    loop, recorder = loop_for(model, executor)
    messages = [{"role": "user", "content": "2+2?"}]
    outcome = await loop.run(messages)

    assert outcome.status == "completed"
    assert outcome.usage == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
    assert executor.codes == ["print(2 + 2)"]
    names = recorder.names()
    assert names[:2] == ["tool_calls_begin", "tool_call_named"]
    code = "".join(c[2] for c in recorder.calls if c[0] == "code_delta")
    assert code == "print(2 + 2)"  # each delta only the new part of the code
    assert names.index("tool_calls_complete") < names.index("code_output") < names.index("code_done")
    assert [c[2].text for c in recorder.calls if c[0] == "code_output"] == ["ran: ", "print(2 + 2)\n"]
    done = next(c for c in recorder.calls if c[0] == "code_done")
    assert done[2].saved.images == ["file-img"] and "ran: print(2 + 2)" in done[2].text
    assert names[names.index("code_done") + 1] == "tool_calls_end"
    assert next(c for c in recorder.calls if c[0] == "tool_calls_end")[2] is True
    assert "".join(c[1] for c in recorder.calls if c[0] == "text_delta") == "The answer is 4."
    assert names[-1] == "answer_complete"
    # the second request carries the call and its result
    assert [m["role"] for m in model.requests[1]["messages"]] == ["user", "assistant", "tool"]
    assert model.requests[1]["messages"][2]["content"] == done[2].text
    assert model.requests[0]["tools"][0]["function"]["name"] == "python"


async def test_function_calls_end_the_turn_waiting_for_outputs():
    arguments = '{"city": "Paris"}'
    model = ScriptedModel([ToolCallDelta(0, "call_f", "weather", arguments),
                           Completion("", [AssembledCall("call_f", "weather", arguments)], "tool_calls")])
    parameters = TurnParameters(model="m", functions=[{"name": "weather", "parameters": {"type": "object"}}])
    loop, recorder = loop_for(model, parameters=parameters)
    outcome = await loop.run([{"role": "user", "content": "Weather?"}])
    assert outcome.status == "requires_action"
    waiting = next(c for c in recorder.calls if c[0] == "requires_action")[1]
    assert [(c.id, c.name, c.arguments) for c in waiting] == [("call_f", "weather", arguments)]
    assert ("tool_calls_end", None, False) in recorder.calls


async def test_a_tool_that_does_not_exist_is_answered_and_the_turn_goes_on():
    model = ScriptedModel([ToolCallDelta(0, "call_x", "browse", "{}"),
                           Completion("", [AssembledCall("call_x", "browse", "{}")], "tool_calls")],
                          answer("Sorry."))
    loop, recorder = loop_for(model)
    assert (await loop.run([{"role": "user", "content": "Browse"}])).status == "completed"
    output = next(c for c in recorder.calls if c[0] == "function_output")
    assert "no tool named 'browse'" in output[2]
    assert model.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_x", "content": output[2]}


async def test_cancel_deadline_and_limits_stop_the_turn():
    loop, _ = loop_for(ScriptedModel(answer("never")), cancelled=lambda: True)
    with pytest.raises(Cancelled):
        await loop.run([])

    loop, _ = loop_for(ScriptedModel(answer("never")), deadline=time.time() - 1)
    with pytest.raises(Stopped) as stopped:
        await loop.run([])
    assert stopped.value.status == "expired"

    parameters = TurnParameters(model="m", max_completion_tokens=5)
    loop, recorder = loop_for(ScriptedModel(answer("cut sho", finish_reason="length")), parameters=parameters)
    with pytest.raises(Stopped) as stopped:
        await loop.run([])
    assert (stopped.value.status, stopped.value.incomplete_reason) == ("incomplete", "max_completion_tokens")
    assert recorder.names()[-1] == "answer_incomplete"


async def test_no_free_session_fails_the_turn_with_rate_limit_exceeded():
    loop, _ = loop_for(ScriptedModel(code_call("1")), Executor(error=NoSessionFree("all busy")))
    with pytest.raises(Stopped) as stopped:
        await loop.run([])
    assert stopped.value.status == "failed"
    assert stopped.value.last_error == {"code": "rate_limit_exceeded", "message": "all busy"}

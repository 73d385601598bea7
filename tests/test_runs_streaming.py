"""Streamed runs (server-sent events) through the official SDK's stream helpers."""

import asyncio
import itertools
import json

import httpx
import openai
import pytest
from openai import AssistantEventHandler, AsyncAssistantEventHandler

MODEL = "scripted-model"
# The SDK marks the Assistants API deprecated; it is the API this server serves.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


@pytest.fixture(scope="module")
def assistant(client):
    return client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])


# A run's events, squashed, once its tool outputs are submitted and the model answers in text
AFTER_TOOL_OUTPUTS = [
    "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
    "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
    "thread.message.in_progress", "thread.message.delta", "thread.message.completed",
    "thread.run.step.completed", "thread.run.completed"]


def python(code: str) -> dict:
    return {"tool_calls": [{"name": "python", "arguments": {"code": code}}]}


def squash(names):
    """Event names with runs of repeated deltas folded into one."""
    return [name for name, _ in itertools.groupby(names)]


ONE_CELL_EVENTS = [
    "thread.run.created", "thread.run.queued", "thread.run.in_progress",
    "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta", "thread.run.step.completed",
    "thread.run.step.created", "thread.run.step.in_progress",
    "thread.message.created", "thread.message.in_progress", "thread.message.delta", "thread.message.completed",
    "thread.run.step.completed", "thread.run.completed",
]


class Recorder(AssistantEventHandler):
    def __init__(self):
        super().__init__()
        self.events = []
        self.text = ""
        self.code = ""
        self.logs = []
        self.tool_calls_done = []

    def on_event(self, event):
        self.events.append(event.event)

    def on_text_delta(self, delta, snapshot):
        self.text += delta.value or ""

    def on_tool_call_delta(self, delta, snapshot):
        if delta.type == "code_interpreter" and delta.code_interpreter:
            self.code += delta.code_interpreter.input or ""
            for output in delta.code_interpreter.outputs or []:
                if output.type == "logs":
                    self.logs.append(output.logs)

    def on_tool_call_done(self, tool_call):
        self.tool_calls_done.append(tool_call)


def test_stream_with_event_handler_in_order(client, assistant, upstream):
    code = "total = sum(range(10))\nprint('total', total)\ntotal * 2"
    upstream.script([python(code), {"text": "The total is 45 and twice that is 90."}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sum 0..9"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=handler) as stream:
        stream.until_done()
        run = stream.get_final_run()
        messages = stream.get_final_messages()
        steps = stream.get_final_run_steps()

    assert squash(handler.events) == ONE_CELL_EVENTS
    assert handler.code == code  # the input deltas add up to the code, each carrying only new text
    assert "".join(handler.logs) == "total 45\n90\n"  # streamed while the cell ran, each delta only new text
    assert handler.text == "The total is 45 and twice that is 90."
    assert run.status == "completed"
    assert messages[0].content[0].text.value == handler.text
    tool_step = steps[0]
    assert tool_step.step_details.tool_calls[0].code_interpreter.input == code
    assert handler.tool_calls_done[0].code_interpreter.outputs[0].logs == "total 45\n90\n"

    # What was streamed is what is stored.
    stored = client.beta.threads.runs.steps.retrieve(tool_step.id, thread_id=thread.id, run_id=run.id)
    assert stored.step_details.tool_calls[0].code_interpreter.input == code
    assert client.beta.threads.messages.retrieve(messages[0].id, thread_id=thread.id).content[0].text.value == \
        handler.text


def test_raw_stream_deltas_carry_only_new_text_and_indices(client, assistant, upstream):
    text = "Saved [the file](sandbox:/mnt/data/out.txt)."
    upstream.script([python("open('/mnt/data/out.txt', 'w').write('hi')\nimport matplotlib.pyplot as plt\n"
                            "print('plotting')\nplt.plot([1, 2])\nplt.show()"), {"text": text}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
    events = list(client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True))

    message_deltas = [e.data.delta.content for e in events if e.event == "thread.message.delta"]
    image_block = message_deltas[0][0]
    assert image_block.type == "image_file" and image_block.index == 0
    text_pieces = [c.text.value for d in message_deltas for c in d
                   if c.type == "text" and c.text.value is not None]
    assert "".join(text_pieces) == text
    assert all(c.index == 1 for d in message_deltas[1:] for c in d)
    annotation_deltas = [a for d in message_deltas for c in d if c.type == "text"
                         for a in (c.text.annotations or [])]
    assert [(a.index, a.type, a.start_index, a.end_index) for a in annotation_deltas] == \
        [(0, "file_path", text.index("sandbox:"), text.index(")."))]

    step_deltas = [e.data.delta.step_details.tool_calls[0] for e in events if e.event == "thread.run.step.delta"]
    assert all(d.index == 0 for d in step_deltas)
    assert step_deltas[0].id and step_deltas[0].type == "code_interpreter"
    outputs = [o for d in step_deltas for o in (d.code_interpreter.outputs or [])]
    assert list(dict.fromkeys((o.index, o.type) for o in outputs)) == [(0, "logs"), (1, "image")]

    completed = next(e.data for e in events if e.event == "thread.message.completed")
    assert [b.type for b in completed.content] == ["image_file", "text"]
    assert completed.content[0].image_file.file_id == next(o for o in outputs if o.type == "image").image.file_id
    assert completed.content[1].text.annotations[0].text == "sandbox:/mnt/data/out.txt"
    assert events[-1].event == "thread.run.completed"


def test_thread_and_run_stream_starts_with_thread_created(client, assistant, upstream):
    upstream.script([{"text": "Hi there."}])
    events = list(client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hello"}]}, stream=True))
    names = squash(e.event for e in events)
    assert names[:4] == ["thread.created", "thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[4:] == ["thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
                         "thread.message.in_progress", "thread.message.delta", "thread.message.completed",
                         "thread.run.step.completed", "thread.run.completed"]
    assert events[1].data.thread_id == events[0].data.id


def test_submit_tool_outputs_stream(client, upstream):
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"key": {"type": "string"}}}}}
    assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}, lookup])
    upstream.script([{"tool_calls": [{"name": "lookup", "arguments": {"key": "answer"}}]},
                     {"text": "The answer is 42."}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Look it up."}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        names = [e.event for e in stream]
        run = stream.current_run
    assert squash(names) == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                             "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
                             "thread.run.requires_action"]
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert json.loads(call.function.arguments) == {"key": "answer"}

    handler = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
            event_handler=handler) as stream:
        stream.until_done()
    assert squash(handler.events) == AFTER_TOOL_OUTPUTS
    assert handler.text == "The answer is 42."


def test_async_stream_with_async_handler(server, upstream):
    upstream.script([python("'async' + ' stream'"), {"text": "Done async."}])

    class Handler(AsyncAssistantEventHandler):
        def __init__(self):
            super().__init__()
            self.events = []

        async def on_event(self, event):
            self.events.append(event.event)

    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                    _strict_response_validation=True)
        assistant = await client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
        handler = Handler()
        async with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                                   event_handler=handler) as stream:
            await stream.until_done()
            steps = await stream.get_final_run_steps()
        await client.close()
        return handler.events, steps

    events, steps = asyncio.run(main())
    assert squash(events) == ONE_CELL_EVENTS
    assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "'async stream'\n"


def test_disconnecting_client_does_not_stop_the_run(server, client, assistant, upstream):
    upstream.script([python("import time\ntime.sleep(1)\nprint('finished')"), {"text": "Finished."}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
    with httpx.stream("POST", f"{server.base_url}/threads/{thread.id}/runs",
                      headers={"Authorization": f"Bearer {server.api_key}", "OpenAI-Beta": "assistants=v2"},
                      json={"assistant_id": assistant.id, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: thread.run.created"
        run_id = json.loads(next(lines)[len("data: "):])["id"]
    # The connection is closed; the run goes on.
    run = client.beta.threads.runs.poll(run_id, thread_id=thread.id, poll_interval_ms=100)
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread.id, order="asc").data
    assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "finished\n"


def test_stream_ends_with_done_and_failed_run(server, client, assistant, upstream):
    upstream.script([{"error": 400, "message": "unsupported parameter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
    with httpx.stream("POST", f"{server.base_url}/threads/{thread.id}/runs",
                      headers={"Authorization": f"Bearer {server.api_key}"},
                      json={"assistant_id": assistant.id, "stream": True}) as response:
        body = response.read().decode()
    blocks = [b for b in body.split("\n\n") if b]
    assert blocks[-1] == "event: done\ndata: [DONE]"
    name, data = blocks[-2].split("\n", 1)
    assert name == "event: thread.run.failed"
    assert json.loads(data[len("data: "):])["last_error"]["code"] == "server_error"


def test_code_output_streams_while_the_cell_runs(client, assistant, upstream):
    """Each print reaches the stream as its own logs delta while the cell still runs, and the
    pieces add up to the step's stored logs."""
    upstream.script([python("import sys, time\nsys.stdout.write('first\\n')\ntime.sleep(1)\nsys.stdout.write('second\\n')\npass"),
                     {"text": "done"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
    events = list(client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True))
    names = [e.event for e in events]
    logs = [(n, o.logs) for n, e in enumerate(events) if e.event == "thread.run.step.delta"
            for o in (e.data.delta.step_details.tool_calls[0].code_interpreter.outputs or []) if o.type == "logs"]
    assert [text for _, text in logs] == ["first\n", "second\n"]
    step_done = names.index("thread.run.step.completed")
    assert all(n < step_done for n, _ in logs)
    steps = client.beta.threads.runs.steps.list(events[-1].data.id, thread_id=thread.id, order="asc").data
    assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "first\nsecond\n"

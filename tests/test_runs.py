"""Runs against the real server with real sandboxes and a scripted upstream model, through the
official `openai` SDK (sync and async, strict response validation)."""

import asyncio
import glob
import hashlib
import io
import secrets
import time

import openai
import pytest

from tests.helpers.database import rows_mentioning
from tests.helpers.postgres import server_on_postgres
from tests.helpers.server import start_server

MODEL = "scripted-model"
# The SDK marks the Assistants API deprecated; it is the API this server serves.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def python(code: str) -> dict:
    return {"tool_calls": [{"name": "python", "arguments": {"code": code}}]}


def make_assistant(client, **kwargs):
    kwargs.setdefault("tools", [{"type": "code_interpreter"}])
    return client.beta.assistants.create(model=MODEL, instructions="You analyse data.", **kwargs)


def ask(client, assistant, text: str, thread=None, **run_kwargs):
    """Add a user message (to a new thread unless given) and run it to the end."""
    if thread is None:
        thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content=text)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100, **run_kwargs)
    return thread, run


def steps_of(client, run):
    return client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data


def logs_of(client, run) -> str:
    """The logs of the run's first code call."""
    outputs = steps_of(client, run)[0].step_details.tool_calls[0].code_interpreter.outputs
    return "".join(o.logs for o in outputs if o.type == "logs")


def last_message(client, thread):
    return client.beta.threads.messages.list(thread.id, order="desc", limit=1).data[0]


def wait_for(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def test_create_and_poll_one_cell_gives_last_expression_logs(client, upstream):
    upstream.script([python("x = 2 + 2\nx"), {"text": "The answer is 4."}])
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "What is 2 + 2?")

    assert run.status == "completed"
    assert run.started_at and run.completed_at and run.completed_at >= run.started_at
    assert run.usage is not None and run.usage.total_tokens > 0
    assert run.model == MODEL and run.instructions == "You analyse data."
    assert [t.type for t in run.tools] == ["code_interpreter"]

    steps = steps_of(client, run)
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    call = steps[0].step_details.tool_calls[0]
    assert call.type == "code_interpreter"
    assert call.code_interpreter.input == "x = 2 + 2\nx"
    assert [(o.type, o.logs.strip()) for o in call.code_interpreter.outputs] == [("logs", "4")]
    assert all(s.status == "completed" for s in steps)

    message = last_message(client, thread)
    assert message.role == "assistant" and message.run_id == run.id and message.assistant_id == assistant.id
    assert message.content[0].text.value == "The answer is 4."
    assert steps[1].step_details.message_creation.message_id == message.id

    # The model saw the python tool, the instructions, the question, then the cell's output.
    first, second = upstream.requests[-2:]
    assert first["model"] == MODEL
    assert [t["function"]["name"] for t in first["tools"]] == ["python"]
    assert first["messages"][0] == {"role": "system", "content": "You analyse data."}
    assert first["messages"][-1]["content"].startswith("What is 2 + 2?")
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"].strip() == "4"
    assert second["messages"][-2]["tool_calls"][0]["id"] == tool_message["tool_call_id"]

    retrieved = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert retrieved.status == "completed"
    listed = client.beta.threads.runs.list(thread.id)
    assert [r.id for r in listed.data] == [run.id]


def test_run_settings_reach_the_model(client, upstream):
    upstream.script([{"text": "Short."}])
    assistant = make_assistant(client)
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, instructions="Override.", additional_instructions="Be short.",
        additional_messages=[{"role": "user", "content": "Extra question"}], temperature=0.2, top_p=0.5,
        max_completion_tokens=500, tool_choice="none", parallel_tool_calls=False, metadata={"k": "v"},
        truncation_strategy={"type": "last_messages", "last_messages": 5}, poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    assert (run.instructions, run.temperature, run.top_p, run.max_completion_tokens) == ("Override.", 0.2, 0.5, 500)
    assert run.tool_choice == "none" and run.parallel_tool_calls is False and run.metadata == {"k": "v"}
    assert run.truncation_strategy.type == "last_messages" and run.truncation_strategy.last_messages == 5

    body = upstream.requests[-1]
    assert body["messages"] == [{"role": "system", "content": "Override.\n\nBe short."},
                                {"role": "user", "content": "Extra question"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.5, 500)
    assert body["tool_choice"] == "none" and body["parallel_tool_calls"] is False
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in messages] == [("user", "Extra question"),
                                                                      ("assistant", "Short.")]


def test_seed_flow_files_from_assistant_and_attachments(client, upstream):
    data = client.files.create(file=("data.csv", io.BytesIO(b"city,temp\nOslo,4\nLima,19\n")), purpose="assistants")
    notes = client.files.create(file=("data.csv", io.BytesIO(b"note\nsecond file, same name\n")),
                                purpose="assistants")
    assistant = make_assistant(client, tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": "Compare the files.",
        "attachments": [{"file_id": notes.id, "tools": [{"type": "code_interpreter"}]}]}])
    upstream.script([
        python("import pandas as pd\nprint(pd.read_csv('/mnt/data/data.csv').temp.sum())\n"
               "print(open('/mnt/data/data_1.csv').read())"),
        {"text": "The temperatures add up to 23."},
    ])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100)
    assert run.status == "completed", run.last_error

    system = upstream.requests[-2]["messages"][0]["content"]
    assert "/mnt/data/data.csv" in system and "/mnt/data/data_1.csv" in system
    assert '(attached file: "/mnt/data/data_1.csv")' in upstream.requests[-2]["messages"][-1]["content"]
    logs = steps_of(client, run)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
    assert logs.splitlines()[0] == "23"
    assert "second file, same name" in logs
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "The temperatures add up to 23."


def test_chart_becomes_image_file_block_and_downloadable_png(client, upstream):
    upstream.script([
        python("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [2, 4, 1])\nplt.title('t')\nplt.show()"),
        {"text": "Here is the chart."},
    ])
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "Plot it.")
    assert run.status == "completed", run.last_error

    outputs = steps_of(client, run)[0].step_details.tool_calls[0].code_interpreter.outputs
    images = [o for o in outputs if o.type == "image"]
    assert len(images) == 1
    message = last_message(client, thread)
    assert [b.type for b in message.content] == ["image_file", "text"]
    assert message.content[0].image_file.file_id == images[0].image.file_id
    assert message.content[1].text.value == "Here is the chart."

    info = client.files.retrieve(images[0].image.file_id)
    assert info.purpose == "assistants_output"
    png = client.files.content(images[0].image.file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) == info.bytes
    assert "[1 image displayed to the user]" in upstream.requests[-1]["messages"][-1]["content"]


def test_generated_csv_becomes_file_path_annotation(client, upstream):
    text = "Saved. [Download the table](sandbox:/mnt/data/squares.csv) for details."
    upstream.script([
        python("import pandas as pd\npd.DataFrame({'n': [1, 2, 3], 'sq': [1, 4, 9]})"
               ".to_csv('/mnt/data/squares.csv', index=False)"),
        {"text": text},
    ])
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "Make a table of squares.")
    assert run.status == "completed", run.last_error
    assert '[file saved: "/mnt/data/squares.csv"]' in upstream.requests[-1]["messages"][-1]["content"]

    block = last_message(client, thread).content[0]
    assert block.text.value == text
    (annotation,) = block.text.annotations
    assert annotation.type == "file_path"
    assert annotation.text == "sandbox:/mnt/data/squares.csv"
    assert text[annotation.start_index:annotation.end_index] == annotation.text
    file_id = annotation.file_path.file_id
    info = client.files.retrieve(file_id)
    assert info.purpose == "assistants_output" and info.filename.endswith("squares.csv")
    assert client.files.content(file_id).read() == b"n,sq\n1,1\n2,4\n3,9\n"


def test_a_large_generated_file_is_stored_whole(client, upstream):
    """Copied out of the sandbox in pieces (not read whole into the server's memory)."""
    upstream.script([
        python("import hashlib, os\ndata = os.urandom(48 * 1024 * 1024 + 123)\n"
               "open('/mnt/data/blob.bin', 'wb').write(data)\nhashlib.sha256(data).hexdigest()"),
        {"text": "Saved sandbox:/mnt/data/blob.bin"},
    ])
    thread, run = ask(client, make_assistant(client), "Make random bytes.")
    assert run.status == "completed", run.last_error
    (step,) = [s for s in steps_of(client, run) if s.type == "tool_calls"]
    digest = step.step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip().strip("'")
    (annotation,) = last_message(client, thread).content[0].text.annotations
    content = client.files.content(annotation.file_path.file_id).read()
    assert len(content) == 48 * 1024 * 1024 + 123 and hashlib.sha256(content).hexdigest() == digest


def test_failing_cell_goes_back_to_the_model_which_fixes_it(client, upstream):
    upstream.script([
        python("values = [3, 4]\nsum(values) / len(value)"),
        python("sum(values) / len(values)"),
        {"text": "The mean is 3.5."},
    ])
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "Mean of 3 and 4?")
    assert run.status == "completed", run.last_error

    steps = steps_of(client, run)
    assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
    failed_logs = steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
    assert "NameError" in failed_logs and "value" in failed_logs
    assert steps[1].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "3.5"
    fed_back = upstream.requests[-2]["messages"][-1]
    assert fed_back["role"] == "tool" and "NameError" in fed_back["content"]


def test_state_persists_across_two_runs_of_a_thread(client, upstream):
    assistant = make_assistant(client)
    upstream.script([python("secret = 41\nopen('/mnt/data/keep.txt', 'w').write('kept')"), {"text": "Stored."}])
    thread, first = ask(client, assistant, "Remember 41.")
    upstream.script([python("print(secret + 1, open('/mnt/data/keep.txt').read())"), {"text": "42."}])
    thread, second = ask(client, assistant, "Add one.", thread=thread)
    assert (first.status, second.status) == ("completed", "completed")
    logs = steps_of(client, second)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
    assert logs.strip() == "42 kept"
    # The second run's prompt holds the first run's code, result and answer, in order.
    roles = [(m["role"], m.get("content")) for m in upstream.requests[-2]["messages"][1:]]
    assert roles[0][0] == "user" and roles[1][0] == "assistant" and roles[2][0] == "tool"
    assert roles[3] == ("assistant", "Stored.") and roles[4][0] == "user"


def test_earlier_runs_in_the_prompt_are_the_same_when_kept_and_leave_out_deleted_messages(client, upstream):
    """The server keeps each ended run's part of the prompt (it no longer changes) instead of reading
    it again for every run: the part it kept is the part it read, and a message deleted since is
    left out."""
    assistant = make_assistant(client)
    upstream.script([python("a = 1"), {"text": "First answer."}])
    thread, first = ask(client, assistant, "One.")
    upstream.script([{"text": "Second answer."}])
    thread, second = ask(client, assistant, "Two.", thread=thread)
    read = upstream.requests[-1]["messages"]  # the first run read from the database
    assert [m["role"] for m in read[1:]] == ["user", "assistant", "tool", "assistant", "user"]
    assert read[-2:] == [{"role": "assistant", "content": "First answer."}, {"role": "user", "content": "Two."}]
    (answer,) = client.beta.threads.messages.list(thread.id, run_id=first.id).data
    client.beta.threads.messages.delete(answer.id, thread_id=thread.id)
    upstream.script([{"text": "Third answer."}])
    thread, third = ask(client, assistant, "Three.", thread=thread)
    assert (first.status, second.status, third.status) == ("completed", "completed", "completed")
    kept = upstream.requests[-1]["messages"]  # the first run as kept, the second read
    assert kept == [m for m in read if m.get("content") != "First answer."] + [
        {"role": "assistant", "content": "Second answer."}, {"role": "user", "content": "Three."}]


def test_async_client_runs_and_lists(server, upstream):
    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                    _strict_response_validation=True)
        upstream.script([python("print('async ok')"), {"text": "Done."}])
        assistant = await client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "Go."}])
        run = await client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                             poll_interval_ms=100)
        steps = await client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
        step = await client.beta.threads.runs.steps.retrieve(steps.data[-1].id, thread_id=thread.id,
                                                             run_id=run.id)
        modified = await client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "v"})
        await client.close()
        return run, steps, step, modified

    run, steps, step, modified = asyncio.run(main())
    assert run.status == "completed"
    assert steps.data[-1].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "async ok\n"
    assert step.id == steps.data[-1].id
    assert modified.metadata == {"k": "v"}


def test_a_message_being_written_is_listed_in_progress(client, upstream):
    """Rows are written once when an answer is quick; one that takes longer is visible while it is written."""
    text = "A slow answer, written piece by piece."
    upstream.script([{"text": text, "chunk_delay": 0.3}])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Take your time."}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    writing = wait_for(lambda: [m for m in client.beta.threads.messages.list(thread.id).data if m.role == "assistant"])
    assert writing[0].status == "in_progress" and writing[0].run_id == run.id
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert step.type == "message_creation" and step.status == "in_progress"
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert final.status == "completed"
    done = client.beta.threads.messages.retrieve(writing[0].id, thread_id=thread.id)
    assert done.status == "completed" and done.content[0].text.value == text
    assert [s.status for s in steps_of(client, final)] == ["completed"]


def executing(marker: str) -> bool:
    """Whether a sandbox's cell has created /mnt/data/MARKER (seen from the host through /proc)."""
    return bool(glob.glob(f"/proc/[0-9]*/root/mnt/data/{marker}"))


def test_cancel_interrupts_a_long_cell(client, upstream):
    marker = "executing-" + secrets.token_hex(8)
    upstream.script([python(f"import time\nopen('/mnt/data/{marker}', 'w').close()\ntry:\n    time.sleep(120)\n"
                            "except KeyboardInterrupt:\n    interrupted = 'yes'\n    raise"), {"text": "never"}])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait a minute."}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    wait_for(lambda: executing(marker), timeout=120)
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert final.status == "cancelled" and final.cancelled_at is not None
    assert steps_of(client, final)[0].status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)

    # The interrupt reached the cell, and the thread's session survived it to serve the next run.
    upstream.script([python("print(interrupted)"), {"text": "ok"}])
    _, after = ask(client, assistant, "Again.", thread=thread)
    assert after.status == "completed"
    assert steps_of(client, after)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs == "yes\n"


def test_function_tool_requires_action_then_submit(client, upstream):
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    assistant = make_assistant(client, tools=[{"type": "code_interpreter"}, weather])
    upstream.script([
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        python("print(4 * 9 / 5 + 32)"),
        {"text": "It is 39.2 F in Oslo."},
    ])
    thread, run = ask(client, assistant, "Weather in Oslo, in F?")
    assert run.status == "requires_action"
    assert run.expires_at is not None and run.expires_at > time.time()
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Oslo"}'
    assert upstream.requests[-1]["tools"][1]["function"]["name"] == "get_weather"

    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id,
                                                     tool_outputs=[{"tool_call_id": "call_wrong", "output": "x"}])
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "4 C"}],
        poll_interval_ms=100)
    assert done.status == "completed", done.last_error
    assert done.required_action is None
    steps = steps_of(client, done)
    assert steps[0].step_details.tool_calls[0].function.output == "4 C"
    assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
    resumed = upstream.requests[-2]["messages"]
    assert resumed[-1] == {"role": "tool", "tool_call_id": call.id, "content": "4 C"}
    assert last_message(client, thread).content[0].text.value == "It is 39.2 F in Oslo."


def test_upstream_error_fails_the_run(client, upstream):
    # 5xx answers are retried a couple of times before the run fails.
    upstream.script([{"error": 503, "message": "overloaded"}] * 3)
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "Hello?")
    assert run.status == "failed" and run.failed_at is not None
    assert run.last_error.code == "server_error" and "overloaded" in run.last_error.message


def test_bad_requests(client):
    assistant = make_assistant(client)
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match="file_search"):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, tools=[{"type": "file_search"}])
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread.id, assistant_id="asst_missing")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, temperature=5)
    with pytest.raises(openai.BadRequestError, match="gpt-unknown"):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, model="gpt-unknown")
    assert client.beta.threads.runs.list(thread.id).data == []


def test_restart_during_a_run_fails_it_with_a_reason(server, client, upstream):
    assistant = make_assistant(client)
    upstream.script([python("kept = 1"), {"text": "Set."}])
    thread, _ = ask(client, assistant, "Set a variable.")
    upstream.script([{"delay": 30, "text": "too late"}])
    client.beta.threads.messages.create(thread.id, role="user", content="Slow one.")
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    wait_for(lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress")
    polled = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert int(polled.headers["openai-poll-after-ms"]) > 0  # the SDKs' pollers read it
    server.restart()
    after = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert after.status == "failed"
    assert after.last_error.code == "server_error" and "restarted" in after.last_error.message

    # The thread goes on in a new session, and the model is told that its state is gone.
    upstream.script([python("kept"), {"text": "Lost it."}])
    _, again = ask(client, assistant, "Still there?", thread=thread)
    assert again.status == "completed"
    told = upstream.requests[-1]["messages"][-1]["content"]
    assert "earlier session ended" in told and "NameError" in told


def test_no_upstream_configured_is_a_400(tmp_path):
    srv = start_server(tmp_path)
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key=srv.api_key, _strict_response_validation=True)
        assistant = make_assistant(client)
        thread = client.beta.threads.create()
        with pytest.raises(openai.BadRequestError, match="CODEINTERP_MODEL_BASE_URL"):
            client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert client.beta.threads.runs.list(thread.id).data == []
    finally:
        srv.stop()


def test_run_waiting_for_tool_outputs_expires(tmp_path, upstream, database_env):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                      "CODEINTERP_RUN_EXPIRY_SECONDS": "2", **database_env})
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key=srv.api_key, _strict_response_validation=True)
        lookup = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        assistant = client.beta.assistants.create(model=MODEL, tools=[lookup])
        upstream.script([{"tool_calls": [{"name": "lookup", "arguments": {}}]}])
        thread, run = ask(client, assistant, "Look it up.")
        assert run.status == "requires_action" and run.expires_at - run.created_at == 2
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        expired = wait_for(lambda: (r := client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))
                           .status == "expired" and r, timeout=15)
        assert expired.required_action is None
        (step,) = steps_of(client, expired)
        assert step.status == "expired" and step.expired_at is not None
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id,
                                                         tool_outputs=[{"tool_call_id": call.id, "output": "x"}])
    finally:
        srv.stop()


@pytest.mark.postgres
def test_runs_on_postgresql(tmp_path, upstream):
    with server_on_postgres(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url}) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key=srv.api_key, _strict_response_validation=True)
        lookup = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        assistant = make_assistant(client, tools=[{"type": "code_interpreter"}, lookup])
        upstream.script([python("6 * 7"), {"tool_calls": [{"name": "lookup", "arguments": {}}]},
                         {"text": "42, and looked up."}])
        thread, run = ask(client, assistant, "Compute and look up.")
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}],
            poll_interval_ms=100)
        assert done.status == "completed", done.last_error
        steps = steps_of(client, done)
        assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
        assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "42"
        assert [r.id for r in client.beta.threads.runs.list(thread.id, limit=1, order="asc")] == [run.id]

        upstream.script([{"delay": 30, "text": "too late"}])
        slow = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for(lambda: client.beta.threads.runs.retrieve(slow.id, thread_id=thread.id).status == "in_progress")
        srv.restart()
        after = client.beta.threads.runs.retrieve(slow.id, thread_id=thread.id)
        assert after.status == "failed" and "restarted" in after.last_error.message


def session_group_exists(session_id: str) -> bool:
    """Whether the sandbox session's control group (codeinterp/<manager>/<session>) is still there."""
    return bool(glob.glob(f"/sys/fs/cgroup/*/codeinterp/*/{session_id}") +
                glob.glob(f"/sys/fs/cgroup/codeinterp/*/{session_id}"))


def test_deleting_a_thread_deletes_its_runs_and_steps_and_ends_its_session(server, client, upstream):
    assistant = make_assistant(client)
    upstream.script([python("import re\nprint(re.search('sbx_[0-9a-f]+', open('/proc/self/cgroup').read())[0])"),
                     {"text": "ok"}])
    thread, run = ask(client, assistant, "Run it")
    assert run.status == "completed"
    steps = steps_of(client, run)
    session_id = steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip()
    assert session_group_exists(session_id)
    messages = client.beta.threads.messages.list(thread.id).data
    assert client.beta.threads.delete(thread.id).deleted
    for read in (lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
                 lambda: client.beta.threads.runs.list(thread.id),
                 lambda: steps_of(client, run)):
        with pytest.raises(openai.NotFoundError):
            read()
    # Nothing of the thread is left in the database: its messages, runs and steps are gone too.
    ids = [thread.id, run.id, *(s.id for s in steps), *(m.id for m in messages)]
    assert rows_mentioning(server, *ids) == []
    wait_for(lambda: not session_group_exists(session_id), timeout=60)


def test_bad_messages_in_a_run_request_name_where_they_are(client):
    assistant = make_assistant(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.create_and_run(assistant_id=assistant.id, thread={
            "messages": [{"role": "user", "content": "fine"}, {"role": "robot", "content": "hi"}]})
    assert caught.value.body["param"] == "thread.messages[1].role"
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                        additional_messages=[{"role": "user", "content": 5}])
    assert caught.value.body["param"].startswith("additional_messages[0].content")
    assert client.beta.threads.runs.list(thread.id).data == []

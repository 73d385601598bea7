"""Message attachments as Assistants clients send and read them, through the official SDK (strict
validation) against the real server, real sandboxes and the scripted upstream model:
- attachments naming file_search (alone or beside code_interpreter) are accepted, kept as sent,
  and their files land in /mnt/data like any code_interpreter attachment;
- the assistant message lists the files the run produced and refers to in its `attachments`."""

import io

import openai
import pytest

from tests.test_runs import MODEL, last_message, make_assistant, python, steps_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def upload(client, name: str, data: bytes):
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants")


def tools_of(message) -> list[list[str]]:
    return [[t.type for t in a.tools] for a in message.attachments]


def test_attachments_naming_file_search_land_in_mnt_data(client, upstream):
    searched = upload(client, "manual.txt", b"searched for\n")
    both = upload(client, "table.csv", b"a,b\n1,2\n")
    plain = upload(client, "plain.txt", b"no tools named\n")
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": "Read the manual.",
        "attachments": [{"file_id": searched.id, "tools": [{"type": "file_search"}]}]}])
    message = client.beta.threads.messages.create(thread.id, role="user", content="And the table.", attachments=[
        {"file_id": both.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]},
        {"file_id": plain.id, "tools": []}])

    # Kept as sent: each attachment's tools, in order.
    assert tools_of(message) == [["file_search", "code_interpreter"], []]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message
    first = client.beta.threads.messages.list(thread.id, order="asc").data[0]
    assert first.attachments[0].file_id == searched.id and tools_of(first) == [["file_search"]]

    upstream.script([python("for n in ('manual.txt', 'table.csv', 'plain.txt'):\n"
                            "    print(n, open('/mnt/data/' + n).read().strip())"),
                     {"text": "Read them all."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=make_assistant(client).id,
                                                   poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    logs = steps_of(client, run)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
    assert logs.splitlines() == ["manual.txt searched for", "table.csv a,b", "1,2",
                                 "plain.txt no tools named"]
    user_turns = [m["content"] for m in upstream.requests[-2]["messages"] if m["role"] == "user"]
    assert '(attached file: "/mnt/data/manual.txt")' in user_turns[0]
    assert '(attached file: "/mnt/data/table.csv")' in user_turns[1]


def test_unknown_attachment_tool_is_400_and_file_search_tools_stay_refused(client):
    notes = upload(client, "notes.txt", b"x")
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.messages.create(thread.id, role="user", content="x",
                                            attachments=[{"file_id": notes.id, "tools": [{"type": "retrieval"}]}])
    assert failure.value.body["param"] == "attachments[0].tools[0].type"
    # An assistant or a run that would use file_search is still refused: retrieval is not offered.
    with pytest.raises(openai.BadRequestError, match="file_search"):
        client.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
    with pytest.raises(openai.BadRequestError, match="file_search"):
        client.beta.threads.runs.create(thread.id, assistant_id=make_assistant(client).id,
                                        tools=[{"type": "file_search"}])


def test_assistant_message_lists_the_files_the_run_produced_and_refers_to(client, upstream):
    source = upload(client, "source.csv", b"n\n1\n2\n")
    text = ("[The squares](sandbox:/mnt/data/squares.csv), again: sandbox:/mnt/data/squares.csv. "
            "The input was [source](sandbox:/mnt/data/source.csv).")
    upstream.script([
        python("import pandas as pd, matplotlib.pyplot as plt\n"
               "pd.DataFrame({'n': [1, 2], 'sq': [1, 4]}).to_csv('/mnt/data/squares.csv', index=False)\n"
               "open('/mnt/data/unmentioned.txt', 'w').write('left out')\n"
               "plt.plot([1, 2], [1, 4]); plt.show()"),
        {"text": text},
    ])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{
        "role": "user", "content": "Square them.",
        "attachments": [{"file_id": source.id, "tools": [{"type": "code_interpreter"}]}]}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100)
    assert run.status == "completed", run.last_error

    message = last_message(client, thread)
    image = message.content[0].image_file.file_id
    annotations = message.content[1].text.annotations
    squares = annotations[0].file_path.file_id
    assert [a.file_path.file_id for a in annotations] == [squares, squares, source.id]
    # The image and the linked CSV, once each; not the user's file, not the file nobody links.
    assert [(a.file_id, tools) for a, tools in zip(message.attachments, tools_of(message))] == [
        (image, ["code_interpreter"]), (squares, ["code_interpreter"])]
    assert client.files.content(squares).read() == b"n,sq\n1,1\n2,4\n"

    # A message with no generated file lists none.
    upstream.script([{"text": "Nothing new."}])
    client.beta.threads.messages.create(thread.id, role="user", content="Thanks.")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100)
    assert run.status == "completed" and last_message(client, thread).attachments == []


def test_streamed_message_completed_carries_the_attachments(client, upstream):
    upstream.script([python("open('/mnt/data/out.txt', 'w').write('streamed')"),
                     {"text": "See sandbox:/mnt/data/out.txt"}])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Write it."}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        completed = [e.data for e in stream if e.event == "thread.message.completed"]
    assert len(completed) == 1
    file_id = completed[0].content[0].text.annotations[0].file_path.file_id
    assert [a.file_id for a in completed[0].attachments] == [file_id]
    assert completed[0] == last_message(client, thread)


def test_files_saved_before_a_function_call_are_listed_and_earlier_runs_files_are_not(client, upstream):
    number = {"type": "function", "function": {"name": "get_number", "parameters": {"type": "object"}}}
    assistant = make_assistant(client, tools=[{"type": "code_interpreter"}, number])
    upstream.script([python("open('/mnt/data/a.txt', 'w').write('a')"),
                     {"tool_calls": [{"name": "get_number", "arguments": {}}]},
                     {"text": "Saved sandbox:/mnt/data/a.txt"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Save a."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100)
    assert run.status == "requires_action", run.last_error
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "7"}],
        poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    message = last_message(client, thread)
    saved = message.content[0].text.annotations[0].file_path.file_id
    assert [a.file_id for a in message.attachments] == [saved]

    # The next run links the same file without producing it: annotated, not listed.
    upstream.script([{"text": "Still at sandbox:/mnt/data/a.txt"}])
    client.beta.threads.messages.create(thread.id, role="user", content="Where is it?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    message = last_message(client, thread)
    assert message.content[0].text.annotations[0].file_path.file_id == saved
    assert message.attachments == []

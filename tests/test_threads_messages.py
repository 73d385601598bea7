"""Threads and messages through the official SDK against the real server."""

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.helpers.database import rows_mentioning
from tests.helpers.postgres import server_on_postgres

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture(scope="module")
def upload(client):
    return client.files.create(file=("data.csv", b"x,y\n1,2\n3,4\n"), purpose="assistants")


@pytest.fixture(scope="module")
def image(client):
    return client.files.create(file=("dot.png", PNG), purpose="vision")


def test_thread_with_messages_attachments_and_tool_resources(client, upload, image):
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Plot the data",
                   "attachments": [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
                   "metadata": {"n": "1"}},
                  {"role": "user", "content": [{"type": "text", "text": "and summarise it"},
                                               {"type": "image_file", "image_file": {"file_id": image.id}}]},
                  {"role": "assistant", "content": "Earlier answer."}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}}, metadata={"case": "1"})
    assert thread.id.startswith("thread_") and thread.object == "thread" and thread.metadata == {"case": "1"}
    assert thread.tool_resources.code_interpreter.file_ids == [upload.id]
    assert client.beta.threads.retrieve(thread.id) == thread

    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "user", "assistant"]
    first, second, third = messages.data
    assert first.id.startswith("msg_") and first.object == "thread.message" and first.thread_id == thread.id
    assert first.content[0].type == "text"
    assert first.content[0].text.value == "Plot the data" and first.content[0].text.annotations == []
    assert first.attachments[0].file_id == upload.id and first.attachments[0].tools[0].type == "code_interpreter"
    assert first.metadata == {"n": "1"} and first.status == "completed"
    assert first.run_id is None and first.assistant_id is None and first.created_at >= thread.created_at
    assert [c.type for c in second.content] == ["text", "image_file"]
    assert second.content[0].text.value == "and summarise it"
    assert second.content[1].image_file.file_id == image.id and second.content[1].image_file.detail == "auto"
    assert second.attachments == [] and third.content[0].text.value == "Earlier answer."


def test_thread_without_body_and_its_modifications(server, client, upload):
    r = httpx.post(f"{server.base_url}/threads", headers={"Authorization": f"Bearer {server.api_key}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {"id": body["id"], "object": "thread", "created_at": body["created_at"], "tool_resources": {},
                    "metadata": {}}

    thread = client.beta.threads.create()
    modified = client.beta.threads.update(thread.id, metadata={"stage": "two"},
                                          tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    assert modified.metadata == {"stage": "two"}
    assert modified.tool_resources.code_interpreter.file_ids == [upload.id]
    assert client.beta.threads.retrieve(thread.id) == modified
    only_metadata = client.beta.threads.update(thread.id, metadata={"stage": "three"})
    assert only_metadata.tool_resources.code_interpreter.file_ids == [upload.id]

    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": ["file-gone"]}})
    assert failure.value.body["param"] == "tool_resources.code_interpreter.file_ids[0]"
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.update(thread.id, metadata={f"k{n}": "v" for n in range(17)})
    assert failure.value.body["param"] == "metadata"
    assert client.beta.threads.retrieve(thread.id) == only_metadata


def test_deleting_a_thread_deletes_its_messages(server, client):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    message = client.beta.threads.messages.create(thread.id, role="user", content="hello")
    first = client.beta.threads.messages.list(thread.id, order="asc").data[0]
    deleted = client.beta.threads.delete(thread.id)
    assert rows_mentioning(server, thread.id, message.id, first.id) == []
    assert deleted.deleted and deleted.id == thread.id and deleted.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.delete(thread.id)


def test_messages_create_list_retrieve_modify_delete(client):
    thread = client.beta.threads.create()
    ids = [client.beta.threads.messages.create(thread.id, role="user", content=f"m{n}").id for n in range(5)]
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == ids[::-1]
    assert [m.id for m in client.beta.threads.messages.list(thread.id, order="asc", limit=2)] == ids
    page = client.beta.threads.messages.list(thread.id, order="asc", after=ids[1], limit=2)
    assert [m.id for m in page.data] == ids[2:4] and page.has_more
    assert page.first_id == ids[2] and page.last_id == ids[3]
    before = client.beta.threads.messages.list(thread.id, order="asc", before=ids[2])
    assert [m.id for m in before.data] == ids[:2]
    desc_before = client.beta.threads.messages.list(thread.id, before=ids[2], limit=1)
    assert [m.id for m in desc_before.data] == [ids[3]] and desc_before.has_more

    message = client.beta.threads.messages.retrieve(ids[0], thread_id=thread.id)
    assert message.content[0].text.value == "m0"
    updated = client.beta.threads.messages.update(ids[0], thread_id=thread.id, metadata={"seen": "yes"})
    assert updated.metadata == {"seen": "yes"} and updated.content == message.content
    assert client.beta.threads.messages.retrieve(ids[0], thread_id=thread.id).metadata == {"seen": "yes"}
    deleted = client.beta.threads.messages.delete(ids[0], thread_id=thread.id)
    assert deleted.deleted and deleted.id == ids[0] and deleted.object == "thread.message.deleted"
    assert ids[0] not in [m.id for m in client.beta.threads.messages.list(thread.id)]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(ids[0], thread_id=thread.id)
    assert client.beta.threads.messages.list(thread.id, run_id="run_none").data == []

    # A message is found only through its own thread.
    other_thread = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(ids[1], thread_id=other_thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(ids[1], thread_id=other_thread.id)


def test_message_list_defaults_to_20_newest_first(client):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"m{n}"} for n in range(25)])
    page = client.beta.threads.messages.list(thread.id)
    assert len(page.data) == 20 and page.has_more
    assert [m.content[0].text.value for m in page.data] == [f"m{n}" for n in range(24, 4, -1)]
    everything = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc")]
    assert everything == [f"m{n}" for n in range(25)]  # the SDK pages on with `after`


def test_message_content_parts(client, image):
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "image_file", "image_file": {"file_id": image.id, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "text", "text": "What is in these images?"}])
    assert [c.type for c in message.content] == ["image_file", "image_url", "text"]
    assert message.content[0].image_file.file_id == image.id and message.content[0].image_file.detail == "high"
    assert message.content[1].image_url.url == "https://example.com/cat.png"
    assert message.content[1].image_url.detail == "low"
    assert message.content[2].text.value == "What is in these images?"
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message


@pytest.mark.parametrize("fields, param", [
    ({"attachments": [{"file_id": "file-nope", "tools": [{"type": "code_interpreter"}]}]}, "attachments[0].file_id"),
    ({"attachments": [{"file_id": "UPLOAD", "tools": [{"type": "retrieval"}]}]}, "attachments[0].tools[0].type"),
    ({"attachments": [{"tools": []}]}, "attachments[0].file_id"),
    ({"attachments": "file-1"}, "attachments"),
    ({"content": []}, "content"),
    ({"content": 5}, "content"),
    ({"content": [{"type": "text"}]}, "content[0].text"),
    ({"content": "x" * 256001}, "content"),
    ({"content": [{"type": "text", "text": "x" * 256001}]}, "content[0].text"),
    ({"content": [{"type": "audio", "audio": {}}]}, "content[0].type"),
    ({"content": ["plain"]}, "content[0].type"),
    ({"content": [{"type": "text", "text": "x"}, {"type": "image_file", "image_file": {"file_id": "file-nope"}}]},
     "content[1].image_file.file_id"),
    ({"content": [{"type": "image_file", "image_file": {"file_id": "UPLOAD", "detail": "ultra"}}]},
     "content[0].image_file.detail"),
    ({"content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}, "content[0].image_url.url"),
    ({"role": "system"}, "role"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k"),
    ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
])
def test_invalid_messages_answer_400_with_the_param(client, upload, fields, param):
    thread = client.beta.threads.create()
    body = {"role": "user", "content": "x", **fields}
    for attachment in body.get("attachments") or [] if isinstance(body.get("attachments"), list) else []:
        if attachment.get("file_id") == "UPLOAD":
            attachment["file_id"] = upload.id
    if isinstance(body["content"], list):
        for part in body["content"]:
            if isinstance(part, dict) and part.get("image_file", {}).get("file_id") == "UPLOAD":
                part["image_file"]["file_id"] = upload.id
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.messages.create(thread.id, **body)
    assert failure.value.body["param"] == param
    assert failure.value.body["type"] == "invalid_request_error"
    # The same message inside a new thread names the same parameter under messages[0].
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.create(messages=[body])
    assert failure.value.body["param"] == f"messages[0].{param}"
    assert client.beta.threads.messages.list(thread.id).data == []


@pytest.mark.parametrize("body, param", [
    ({"messages": "hello"}, "messages"),
    ({"messages": [5]}, "messages[0]"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x", "colour": "blue"}]}, "messages[0].colour"),
    ({"tool_resources": {"code_interpreter": {"file_ids": [f"file-{n}" for n in range(21)]}}},
     "tool_resources.code_interpreter.file_ids"),
    ({"tool_resources": {"code_interpreter": "file-1"}}, "tool_resources.code_interpreter"),
    ({"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}}, "tool_resources.file_search"),
    ({"metadata": {"a": ["b"]}}, "metadata.a"),
])
def test_malformed_thread_bodies_answer_400(server, body, param):
    r = httpx.post(f"{server.base_url}/threads", headers={"Authorization": f"Bearer {server.api_key}"}, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_unknown_thread_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create("thread_missing", role="user", content="x")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.update("thread_missing", metadata={})
    with pytest.raises(openai.NotFoundError) as failure:
        client.beta.threads.retrieve("thread_missing")
    assert "thread_missing" in failure.value.message and failure.value.body["type"] == "invalid_request_error"


def test_other_projects_objects_do_not_exist(client, other_client, upload):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "mine"}])
    message_id = client.beta.threads.messages.list(thread.id).data[0].id
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.update(thread.id, metadata={"x": "y"})
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.delete(thread.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.create(thread.id, role="user", content="intruder")
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.retrieve(message_id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.update(message_id, thread_id=thread.id, metadata={"x": "y"})
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.delete(message_id, thread_id=thread.id)
    # Another project's files cannot be attached or referenced.
    with pytest.raises(openai.BadRequestError):
        other_client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    theirs = other_client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as failure:
        other_client.beta.threads.messages.create(theirs.id, role="user", content="x",
                                                  attachments=[{"file_id": upload.id, "tools": []}])
    assert failure.value.body["param"] == "attachments[0].file_id"
    # Nothing changed for the owner.
    assert client.beta.threads.retrieve(thread.id).metadata == {}
    assert [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id)] == ["mine"]


def test_run_id_filter_lists_the_runs_messages(client, upstream):
    upstream.script([{"text": "Hello from the run."}])
    assistant = client.beta.assistants.create(model="scripted-model", instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    from_run = client.beta.threads.messages.list(thread.id, run_id=run.id)
    assert [(m.role, m.run_id, m.assistant_id) for m in from_run.data] == [("assistant", run.id, assistant.id)]
    assert from_run.data[0].content[0].text.value == "Hello from the run."
    assert len(client.beta.threads.messages.list(thread.id).data) == 2


@pytest.mark.postgres
def test_assistants_threads_and_messages_on_postgresql(tmp_path, upstream):
    with server_on_postgres(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url}) as srv:
        with make_client(srv) as client, make_client(srv, srv.create_key("other")) as other:
            upload = client.files.create(file=("d.csv", b"a\n1\n"), purpose="assistants")
            assistant = client.beta.assistants.create(
                model="scripted-model", tools=[{"type": "code_interpreter"}], metadata={"k": "v"},
                tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
                response_format={"type": "json_object"})
            assert client.beta.assistants.retrieve(assistant.id) == assistant
            assert client.beta.assistants.update(assistant.id, name="pg").name == "pg"

            thread = client.beta.threads.create(messages=[
                {"role": "user", "content": f"m{n}",
                 "attachments": [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}]}
                for n in range(5)])
            texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc",
                                                                                          limit=2)]
            assert texts == [f"m{n}" for n in range(5)]
            first = client.beta.threads.messages.list(thread.id, order="asc", limit=1).data[0]
            assert client.beta.threads.messages.update(first.id, thread_id=thread.id,
                                                       metadata={"a": "b"}).metadata == {"a": "b"}
            # Content is JSON: a NUL character (which PostgreSQL refuses in text columns) round-trips.
            nul = client.beta.threads.messages.create(thread.id, role="user", content="nul \x00 here")
            assert client.beta.threads.messages.list(thread.id).data[0] == nul
            assert nul.content[0].text.value == "nul \x00 here"
            # In a text column it is refused clearly, and nothing is stored.
            with pytest.raises(openai.BadRequestError):
                client.beta.assistants.update(assistant.id, name="nul \x00 name")
            assert client.beta.assistants.retrieve(assistant.id).name == "pg"

            with pytest.raises(openai.NotFoundError):
                other.beta.threads.messages.list(thread.id)
            with pytest.raises(openai.NotFoundError):
                other.beta.assistants.retrieve(assistant.id)

            assert client.beta.threads.delete(thread.id).deleted
            with pytest.raises(openai.NotFoundError):
                client.beta.threads.messages.retrieve(first.id, thread_id=thread.id)
            assert client.beta.assistants.delete(assistant.id).deleted


def test_no_new_messages_or_deletion_while_a_run_is_active(client, upstream):
    assistant = client.beta.assistants.create(model="scripted-model")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Take your time."}])
    upstream.script([{"delay": 20, "text": "too late"}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.messages.create(thread.id, role="user", content="More.")
    assert run.id in failure.value.message and "active" in failure.value.message
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.delete(thread.id)
    assert run.id in failure.value.message
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50).status == "cancelled"
    assert client.beta.threads.messages.create(thread.id, role="user", content="More.").role == "user"
    assert client.beta.threads.delete(thread.id).deleted


def test_a_json_body_over_the_limit_is_413_and_changes_nothing(client):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "kept"}])
    huge = [{"role": "user", "content": "x" * 1000}] * 40_000  # about 40 MB of JSON
    with pytest.raises(openai.APIStatusError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content="y" * (33 * 1024 * 1024))
    assert caught.value.status_code == 413
    assert caught.value.body["message"] == "The request body is larger than the limit of 33554432 bytes."
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.APIStatusError) as caught:
        client.beta.threads.create(messages=huge)
    assert caught.value.status_code == 413
    assert [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id)] == ["kept"]


def test_a_streamed_json_body_over_the_limit_is_413(server, client):
    """Without a Content-Length the body is counted as it arrives."""
    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"z" * (1024 * 1024)
        yield b'"}]}'

    response = httpx.post(f"{server.base_url}/threads", content=chunks(), timeout=60,
                          headers={"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"

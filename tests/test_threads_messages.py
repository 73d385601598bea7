"""Threads and messages through the official SDK against the real server."""

import openai
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def upload(client):
    return client.files.create(file=("data.csv", b"x,y\n1,2\n3,4\n"), purpose="assistants")


def test_thread_with_messages_attachments_and_tool_resources(client, upload):
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Plot the data",
                   "attachments": [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}]},
                  {"role": "user", "content": [{"type": "text", "text": "and summarise it"},
                                               {"type": "image_file", "image_file": {"file_id": upload.id}}]}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}}, metadata={"case": "1"})
    assert thread.id.startswith("thread_") and thread.metadata == {"case": "1"}
    assert thread.tool_resources.code_interpreter.file_ids == [upload.id]

    messages = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "user"]
    first, second = messages.data
    assert first.content[0].text.value == "Plot the data" and first.content[0].text.annotations == []
    assert first.attachments[0].file_id == upload.id
    assert [c.type for c in second.content] == ["text", "image_file"]
    assert second.content[1].image_file.file_id == upload.id
    assert first.thread_id == thread.id and first.object == "thread.message"


def test_thread_retrieve_modify_delete(client):
    thread = client.beta.threads.create()
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    modified = client.beta.threads.update(thread.id, metadata={"stage": "two"})
    assert modified.metadata == {"stage": "two"}
    client.beta.threads.messages.create(thread.id, role="user", content="hello")
    deleted = client.beta.threads.delete(thread.id)
    assert deleted.deleted and deleted.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)


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

    message = client.beta.threads.messages.retrieve(ids[0], thread_id=thread.id)
    assert message.content[0].text.value == "m0"
    updated = client.beta.threads.messages.update(ids[0], thread_id=thread.id, metadata={"seen": "yes"})
    assert updated.metadata == {"seen": "yes"}
    deleted = client.beta.threads.messages.delete(ids[0], thread_id=thread.id)
    assert deleted.deleted and deleted.object == "thread.message.deleted"
    assert ids[0] not in [m.id for m in client.beta.threads.messages.list(thread.id)]
    assert client.beta.threads.messages.list(thread.id, run_id="run_none").data == []


def test_message_validation(client):
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.messages.create(thread.id, role="user", content="x",
                                            attachments=[{"file_id": "file-nope", "tools": [{"type": "code_interpreter"}]}])
    assert failure.value.body["param"] == "attachments[0]"
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.threads.messages.create(thread.id, role="user", content="x",
                                            attachments=[{"file_id": "file-nope", "tools": [{"type": "file_search"}]}])
    assert "not supported" in failure.value.message
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(thread.id, role="user", content=[])
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create("thread_missing", role="user", content="x")


def test_other_projects_objects_do_not_exist(client, other_client, upload):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "mine"}])
    assistant = client.beta.assistants.create(model="scripted-model")
    message_id = client.beta.threads.messages.list(thread.id).data[0].id
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.assistants.retrieve(assistant.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.threads.messages.retrieve(message_id, thread_id=thread.id)
    with pytest.raises(openai.BadRequestError):
        other_client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    assert assistant.id not in [a.id for a in other_client.beta.assistants.list(limit=100)]

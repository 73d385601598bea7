"""Assistants through the official SDK against the real server."""

import httpx
import openai
import pytest

# The SDK marks the Assistants API deprecated; it is the API this server serves.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_create_retrieve_modify_delete(client):
    created = client.beta.assistants.create(
        model="scripted-model", name="Analyst", description="Reads CSVs", instructions="Use python.",
        tools=[{"type": "code_interpreter"}], metadata={"team": "data"}, temperature=0.5, top_p=0.9)
    assert created.id.startswith("asst_") and created.object == "assistant"
    assert created.tools[0].type == "code_interpreter" and created.metadata == {"team": "data"}
    assert created.response_format == "auto"

    fetched = client.beta.assistants.retrieve(created.id)
    assert fetched == created

    modified = client.beta.assistants.update(created.id, name="Analyst 2", metadata={"team": "ops"},
                                             tools=[{"type": "code_interpreter"}, {"type": "function", "function": {
                                                 "name": "lookup", "parameters": {"type": "object", "properties": {}}}}])
    assert modified.name == "Analyst 2" and modified.metadata == {"team": "ops"}
    assert [t.type for t in modified.tools] == ["code_interpreter", "function"]
    assert modified.model == "scripted-model" and modified.instructions == "Use python."

    deleted = client.beta.assistants.delete(created.id)
    assert deleted.deleted and deleted.id == created.id and deleted.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(created.id)


def test_tool_resources_reference_uploaded_files(client):
    upload = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    assistant = client.beta.assistants.create(model="scripted-model", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    assert assistant.tool_resources.code_interpreter.file_ids == [upload.id]

    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(model="scripted-model",
                                      tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}})
    assert failure.value.body["param"] == "tool_resources.code_interpreter.file_ids[0]"

    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(model="scripted-model",
                                      tool_resources={"code_interpreter": {"file_ids": [upload.id] * 21}})
    assert "at most 20" in failure.value.message


def test_list_pages_in_both_orders(client):
    ids = [client.beta.assistants.create(model="scripted-model", name=f"a{n}").id for n in range(5)]
    newest_first = [a.id for a in client.beta.assistants.list(limit=100)]
    assert newest_first[:5] == ids[::-1]

    page = client.beta.assistants.list(limit=2, order="asc")
    assert page.has_more and len(page.data) == 2
    walked = [a.id for a in client.beta.assistants.list(limit=2, order="asc")]  # the SDK follows `after`
    assert walked[-5:] == ids

    before = client.beta.assistants.list(order="asc", before=ids[2], limit=100)
    assert [a.id for a in before.data][-2:] == ids[:2]


@pytest.mark.parametrize("fields, param", [
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"name": "x" * 257}, "name"),
    ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
])
def test_invalid_fields_answer_400_with_the_param(client, fields, param):
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(model="scripted-model", **fields)
    assert failure.value.status_code == 400
    assert failure.value.body["param"] == param
    assert failure.value.body["type"] == "invalid_request_error"


def test_missing_model_and_malformed_json_are_400(server):
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    missing = httpx.post(f"{server.base_url}/assistants", headers=headers, json={"name": "no model"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    malformed = httpx.post(f"{server.base_url}/assistants", headers=headers, content=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"


def test_unknown_assistant_is_404(client):
    with pytest.raises(openai.NotFoundError) as failure:
        client.beta.assistants.update("asst_doesnotexist", name="x")
    assert failure.value.body["type"] == "invalid_request_error"

"""Assistants through the official SDK against the real server, and the served description
of the Assistants, threads and messages endpoints against the contract."""

import httpx
import openai
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.conftest import CONTRACT
from tests.helpers.server import UNPARSEABLE

# The SDK marks the Assistants API deprecated; it is the API this server serves.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LOOKUP = {"type": "function", "function": {"name": "lookup", "description": "Finds a row.",
                                           "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}}


def test_create_retrieve_modify_delete(client):
    created = client.beta.assistants.create(
        model="scripted-model", name="Analyst", description="Reads CSVs", instructions="Use python.",
        tools=[{"type": "code_interpreter"}], metadata={"team": "data"}, temperature=0.5, top_p=0.9)
    assert created.id.startswith("asst_") and created.object == "assistant"
    assert created.tools[0].type == "code_interpreter" and created.metadata == {"team": "data"}
    assert created.response_format == "auto" and created.temperature == 0.5 and created.top_p == 0.9
    assert created.tool_resources is not None and created.tool_resources.code_interpreter is None

    fetched = client.beta.assistants.retrieve(created.id)
    assert fetched == created

    modified = client.beta.assistants.update(created.id, name="Analyst 2", metadata={"team": "ops"},
                                             tools=[{"type": "code_interpreter"}, LOOKUP])
    assert modified.name == "Analyst 2" and modified.metadata == {"team": "ops"}
    assert [t.type for t in modified.tools] == ["code_interpreter", "function"]
    assert modified.tools[1].function.name == "lookup"
    assert modified.tools[1].function.parameters == LOOKUP["function"]["parameters"]
    # Fields not sent keep their values.
    assert modified.model == "scripted-model" and modified.instructions == "Use python."
    assert modified.description == "Reads CSVs" and modified.temperature == 0.5
    assert client.beta.assistants.retrieve(created.id) == modified

    cleared = client.beta.assistants.update(created.id, description=None, model="other-model")
    assert cleared.description is None and cleared.model == "other-model" and cleared.name == "Analyst 2"

    deleted = client.beta.assistants.delete(created.id)
    assert deleted.deleted and deleted.id == created.id and deleted.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(created.id)


def test_minimal_assistant_has_the_contracts_defaults(server, client):
    created = client.beta.assistants.create(model="scripted-model")
    raw = httpx.get(f"{server.base_url}/assistants/{created.id}",
                    headers={"Authorization": f"Bearer {server.api_key}"}).json()
    assert raw == {"id": created.id, "object": "assistant", "created_at": created.created_at, "name": None,
                   "description": None, "model": "scripted-model", "instructions": None, "tools": [],
                   "tool_resources": {}, "metadata": {}, "temperature": None, "top_p": None,
                   "response_format": "auto"}


@pytest.mark.parametrize("response_format", [
    "auto", {"type": "text"}, {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "row", "strict": True, "schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}},
])
def test_response_formats_round_trip(client, response_format):
    tools = [LOOKUP] if response_format != "auto" and response_format["type"] == "json_schema" else []
    created = client.beta.assistants.create(model="scripted-model", tools=tools, response_format=response_format)
    fetched = client.beta.assistants.retrieve(created.id)
    if response_format == "auto":
        assert fetched.response_format == "auto"
    else:
        assert fetched.response_format.model_dump(exclude_none=True, by_alias=True) == response_format


def test_tool_resources_reference_uploaded_files(client, other_client):
    upload = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    assistant = client.beta.assistants.create(model="scripted-model", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    assert assistant.tool_resources.code_interpreter.file_ids == [upload.id]
    cleared = client.beta.assistants.update(assistant.id, tool_resources={"code_interpreter": {"file_ids": []}})
    assert cleared.tool_resources.code_interpreter.file_ids == []

    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(model="scripted-model",
                                      tool_resources={"code_interpreter": {"file_ids": [upload.id, "file-missing"]}})
    assert failure.value.body["param"] == "tool_resources.code_interpreter.file_ids[1]"
    assert "file-missing" in failure.value.message

    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(model="scripted-model",
                                      tool_resources={"code_interpreter": {"file_ids": [f"file-{n}" for n in range(21)]}})
    assert "at most 20" in failure.value.message
    assert failure.value.body["param"] == "tool_resources.code_interpreter.file_ids"

    # Another project's file does not exist for this project.
    with pytest.raises(openai.BadRequestError) as failure:
        other_client.beta.assistants.create(model="scripted-model",
                                            tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    assert failure.value.body["param"] == "tool_resources.code_interpreter.file_ids[0]"


def test_list_pages_in_both_orders(client):
    ids = [client.beta.assistants.create(model="scripted-model", name=f"a{n}").id for n in range(5)]
    newest_first = [a.id for a in client.beta.assistants.list(limit=100)]
    assert newest_first[:5] == ids[::-1]

    page = client.beta.assistants.list(limit=2, order="asc")
    assert page.has_more and len(page.data) == 2 and page.first_id == page.data[0].id
    walked = [a.id for a in client.beta.assistants.list(limit=2, order="asc")]  # the SDK follows `after`
    assert walked[-5:] == ids

    after = client.beta.assistants.list(order="desc", after=ids[3], limit=2)
    assert [a.id for a in after.data] == [ids[2], ids[1]] and after.has_more
    before = client.beta.assistants.list(order="asc", before=ids[2], limit=100)
    assert [a.id for a in before.data][-2:] == ids[:2]
    last = client.beta.assistants.list(order="desc", after=newest_first[-1])
    assert last.data == [] and not last.has_more and last.first_id is None


@pytest.mark.parametrize("fields, param", [
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "code_interpreter"}, {"type": "retrieval"}]}, "tools[1].type"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools[0].function.parameters"),
    ({"tools": [LOOKUP, LOOKUP]}, "tools[1].function.name"),
    ({"tools": [{"type": "code_interpreter"}] * 129}, "tools"),
    ({"tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}}}, "tool_resources.file_search"),
    ({"tool_resources": {"code_interpreter": ["file-1"]}}, "tool_resources.code_interpreter"),
    ({"tool_resources": {"code_interpreter": {"file_ids": "file-1"}}}, "tool_resources.code_interpreter.file_ids"),
    ({"temperature": 3}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"name": "x" * 257}, "name"),
    ({"description": "x" * 513}, "description"),
    ({"instructions": "x" * 256001}, "instructions"),
    ({"model": ""}, "model"),
    ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
    ({"metadata": {"k" * 65: "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k"),
    ({"response_format": "json"}, "response_format"),
    ({"response_format": {"type": "xml"}}, "response_format"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "response_format.json_schema.name"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r"}}, "tools": [{"type": "code_interpreter"}]},
     "response_format"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
])
def test_invalid_fields_answer_400_with_the_param(client, fields, param):
    fields = {"model": "scripted-model", **fields}
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.create(**fields)
    assert failure.value.status_code == 400
    assert failure.value.body["param"] == param
    assert failure.value.body["type"] == "invalid_request_error"


def test_invalid_modification_changes_nothing(client):
    assistant = client.beta.assistants.create(model="scripted-model", name="kept", tools=[{"type": "code_interpreter"}])
    with pytest.raises(openai.BadRequestError) as failure:
        client.beta.assistants.update(assistant.id, name="changed", tools=[{"type": "file_search"}])
    assert "not supported" in failure.value.message
    assert client.beta.assistants.retrieve(assistant.id) == assistant


@pytest.mark.parametrize("body, param", [
    ({"name": "no model"}, "model"),
    ({"model": 5}, "model"),
    ({"model": "m", "tools": "code_interpreter"}, "tools"),
    ({"model": "m", "tools": [5]}, "tools[0]"),
    ({"model": "m", "metadata": ["a"]}, "metadata"),
    ({"model": "m", "metadata": {"a": 1}}, "metadata.a"),
    ({"model": "m", "temperature": "hot"}, "temperature"),
    ({"model": "m", "tool_resources": "files"}, "tool_resources"),
    ({"model": "m", "colour": "blue"}, "colour"),
])
def test_malformed_bodies_answer_400(server, body, param):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    r = httpx.post(f"{server.base_url}/assistants", headers=headers, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_malformed_json_and_bad_list_queries_are_400(server):
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    malformed = httpx.post(f"{server.base_url}/assistants", headers=headers, content=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
    for query, param in (("limit=0", "limit"), ("limit=101", "limit"), ("order=up", "order"),
                         ("after=asst_unknown", "after"), ("before=asst_unknown", "before")):
        r = httpx.get(f"{server.base_url}/assistants?{query}", headers=headers)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (query, r.text)


def test_unknown_and_other_projects_assistants_are_404(client, other_client):
    with pytest.raises(openai.NotFoundError) as failure:
        client.beta.assistants.update("asst_doesnotexist", name="x")
    assert failure.value.body["type"] == "invalid_request_error"
    assert "asst_doesnotexist" in failure.value.message

    mine = client.beta.assistants.create(model="scripted-model", name="mine")
    with pytest.raises(openai.NotFoundError):
        other_client.beta.assistants.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other_client.beta.assistants.update(mine.id, name="theirs")
    with pytest.raises(openai.NotFoundError):
        other_client.beta.assistants.delete(mine.id)
    assert mine.id not in [a.id for a in other_client.beta.assistants.list(limit=100)]
    assert client.beta.assistants.retrieve(mine.id).name == "mine"


# ---- the served OpenAPI description against the contract ---------------------------------

PATHS = ["/assistants", "/assistants/{assistant_id}", "/threads/{thread_id}", "/threads/{thread_id}/messages",
         "/threads/{thread_id}/messages/{message_id}"]
SCHEMAS = ["AssistantObject", "ListAssistantsResponse", "DeleteAssistantResponse", "CreateAssistantRequest",
           "ModifyAssistantRequest", "ThreadObject", "DeleteThreadResponse", "CreateThreadRequest",
           "ModifyThreadRequest", "MessageObject", "ListMessagesResponse", "DeleteMessageResponse",
           "CreateMessageRequest", "ModifyMessageRequest", "MessageContentTextObject",
           "MessageContentImageFileObject", "MessageContentImageUrlObject", "AssistantToolsCode",
           "AssistantToolsFunction", "FunctionObject"]


def test_paths_and_operation_ids_match_the_contract(contract, served):
    for path in PATHS + ["/threads"]:
        theirs = {m: op for m, op in contract["paths"][path].items() if m in ("get", "post", "delete")}
        ours = {m: op for m, op in served["paths"]["/v1" + path].items() if m in ("get", "post", "delete")}
        if path == "/threads":  # GET /threads is not in the contract either; createThread only
            ours = {m: op for m, op in ours.items() if m == "post"}
        assert {m: op["operationId"] for m, op in ours.items()} == \
               {m: op["operationId"] for m, op in theirs.items()}, path


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_have_the_contracts_fields(contract, served, name):
    theirs = contract["components"]["schemas"][name]
    schemas = served["components"]["schemas"]
    ours = schemas.get(name) or schemas.get(name + "-Output") or schemas[name + "-Input"]
    assert set(ours["properties"]) == set(theirs["properties"])
    assert set(ours.get("required", [])) == set(theirs.get("required", []))


def test_list_parameters_match_the_contract(contract, served):
    for path in ("/assistants", "/threads/{thread_id}/messages"):
        theirs = {p["name"]: p for p in contract["paths"][path]["get"]["parameters"]}
        ours = {p["name"]: p for p in served["paths"]["/v1" + path]["get"]["parameters"]}
        assert set(ours) == set(theirs), path
        assert ours["limit"]["schema"]["default"] == theirs["limit"]["schema"]["default"] == 20
        assert ours["order"]["schema"]["default"] == "desc"


# ---- requests generated from the contract (Schemathesis) ---------------------------------

generated = schemathesis.openapi.from_path(CONTRACT).include(
    path_regex=r"^/(assistants(/\{assistant_id\})?|threads(/\{thread_id\}(/messages(/\{message_id\})?)?)?)$")


@generated.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_fail_the_server(case, server):
    """Any body the contract allows (and the mutations Schemathesis makes) answers 200, 400 or 404
    in OpenAI's error shape, and a 200 matches the contract's schema."""
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {server.api_key}"}
    response = case.call(base_url=server.base_url)
    if response.status_code == 400 and response.text == UNPARSEABLE:
        return  # not HTTP as uvicorn reads it (e.g. an empty Content-Length): refused before the application
    checks = [not_a_server_error, content_type_conformance]
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and body.get("data") == []):  # an empty page has null first_id/last_id
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)
    assert response.status_code in (200, 400, 404, 405), response.text
    if response.status_code >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}


def test_optional_fields_not_given_are_left_out_not_null(server, client):
    """The contract's FunctionObject and json_schema have optional strings: absent, never null."""
    created = client.beta.assistants.create(
        model="scripted-model", tools=[{"type": "function", "function": {"name": "ping"}}],
        response_format={"type": "json_schema", "json_schema": {"name": "out"}})
    raw = httpx.get(f"{server.base_url}/assistants/{created.id}",
                    headers={"Authorization": f"Bearer {server.api_key}"}).json()
    assert raw["tools"] == [{"type": "function", "function": {"name": "ping"}}]
    assert raw["response_format"] == {"type": "json_schema", "json_schema": {"name": "out"}}

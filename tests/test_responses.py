"""/v1/responses with the code_interpreter tool, through the official SDK (strict response
validation) against the real server, real sandboxes and the scripted upstream model."""

import base64
import io
import secrets
import sqlite3

import openai
import pytest

from tests.test_runs import executing, python, wait_for

MODEL = "scripted-model"
OUTPUTS = ["code_interpreter_call.outputs"]
AUTO = [{"type": "code_interpreter", "container": {"type": "auto"}}]
PNG_CODE = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def code_calls(response) -> list:
    return [item for item in response.output if item.type == "code_interpreter_call"]


def message_of(response):
    (message,) = [item for item in response.output if item.type == "message"]
    return message


def sent_text(request: dict) -> str:
    return "\n".join(m["content"] if isinstance(m.get("content"), str) else str(m.get("content"))
                     for m in request["messages"])


def test_auto_container_reads_a_csv_and_writes_a_cited_downloadable_file(client, upstream):
    data = client.files.create(file=("sales.csv", io.BytesIO(b"region,amount\nnorth,10\nsouth,32\n")),
                               purpose="assistants")
    upstream.script([
        python("import glob, pandas as pd\npath = glob.glob('/mnt/data/*sales.csv')[0]\n"
               "df = pd.read_csv(path)\ndf['amount'] *= 2\ndf.to_csv('/mnt/data/doubled.csv', index=False)\n"
               "print(df['amount'].sum())"),
        {"text": "Doubled: [doubled.csv](sandbox:/mnt/data/doubled.csv)."},
    ])
    response = client.responses.create(
        model=MODEL, input="Double the amounts.", include=OUTPUTS,
        tools=[{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}])
    assert response.status == "completed" and response.id.startswith("resp_")
    (call,) = code_calls(response)
    assert call.id.startswith("ci_") and call.status == "completed" and "to_csv" in call.code
    assert call.outputs[0].type == "logs" and call.outputs[0].logs.strip() == "84"
    assert call.container_id.startswith("cntr_")
    assert call.container_id in [c.id for c in client.containers.list()]  # auto made a listed container
    # the model was told where the file is
    assert "sales.csv" in sent_text(upstream.requests[0])

    text = message_of(response).content[0]
    assert response.output_text == text.text
    (citation,) = text.annotations
    assert citation.type == "container_file_citation" and citation.container_id == call.container_id
    assert citation.filename == "doubled.csv"
    assert text.text[citation.start_index:citation.end_index] == "sandbox:/mnt/data/doubled.csv"
    content = client.containers.files.content.retrieve(citation.file_id, container_id=call.container_id)
    assert content.read() == b"region,amount\nnorth,20\nsouth,64\n"
    made = client.containers.files.retrieve(citation.file_id, container_id=call.container_id)
    assert made.source == "assistant" and made.path == "/mnt/data/doubled.csv"


def test_a_chart_is_an_image_output_and_a_cited_png(client, upstream):
    upstream.script([python(PNG_CODE), {"text": "Here is the chart."}])
    response = client.responses.create(model=MODEL, input="Plot it.", tools=AUTO, include=OUTPUTS)
    (call,) = code_calls(response)
    (image,) = [o for o in call.outputs if o.type == "image"]
    assert image.url.startswith("data:image/png;base64,")
    png = base64.b64decode(image.url.split(",", 1)[1])
    assert png.startswith(b"\x89PNG")
    (citation,) = message_of(response).content[0].annotations
    assert (citation.start_index, citation.end_index) == (0, 0)
    assert citation.filename == f"{citation.file_id}.png"
    stored = client.containers.files.retrieve(citation.file_id, container_id=call.container_id)
    assert stored.path == f"/mnt/data/{citation.file_id}.png" and stored.source == "assistant"
    assert client.containers.files.content.retrieve(citation.file_id, container_id=call.container_id).read() == png


def test_outputs_are_null_unless_included(client, upstream):
    upstream.script([python("print('hi')"), {"text": "Said hi."}])
    response = client.responses.create(model=MODEL, input="Say hi.", tools=AUTO)
    (call,) = code_calls(response)
    assert call.outputs is None
    again = client.responses.retrieve(response.id, include=OUTPUTS)
    assert code_calls(again)[0].outputs[0].logs == "hi\n"
    assert code_calls(client.responses.retrieve(response.id))[0].outputs is None


def test_state_lives_in_one_container_and_not_across_two(client, upstream):
    first = client.containers.create(name="one")
    second = client.containers.create(name="two")
    upstream.script([python("secret = 41"), {"text": "set"},
                     python("print(secret + 1)"), {"text": "read"},
                     python("print('secret' in globals())"), {"text": "other"}])
    for container in (first, first, second):
        client.responses.create(model=MODEL, input="go", include=OUTPUTS,
                                tools=[{"type": "code_interpreter", "container": container.id}])
    logs = [m["content"] for m in upstream.requests[1::2] for m in m["messages"] if m["role"] == "tool"]
    assert logs[-2:] == ["42", "False"] or (logs[-2].strip(), logs[-1].strip()) == ("42", "False")


def test_previous_response_id_sends_history_and_auto_reuses_the_container(client, upstream):
    upstream.script([python("x = 20"), {"text": "x is set."}, python("print(x + 1)"), {"text": "21"}])
    first = client.responses.create(model=MODEL, input="Set x.", tools=AUTO, instructions="Be brief.")
    second = client.responses.create(model=MODEL, input="Add one.", tools=AUTO, previous_response_id=first.id,
                                     include=OUTPUTS)
    assert code_calls(second)[0].container_id == code_calls(first)[0].container_id
    assert code_calls(second)[0].outputs[0].logs == "21\n"
    history = upstream.requests[2]["messages"]
    roles = [m["role"] for m in history]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]  # instructions are not carried over
    assert history[0]["content"] == "Set x." and history[3]["content"] == "x is set."
    assert history[1]["tool_calls"][0]["function"]["name"] == "python"
    assert second.previous_response_id == first.id
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "Add one."


def test_a_failing_cell_then_a_fix(client, upstream):
    upstream.script([python("1 / 0"), python("print(1 / 1)"), {"text": "Fixed."}])
    response = client.responses.create(model=MODEL, input="Divide.", tools=AUTO, include=OUTPUTS)
    failed, fixed = code_calls(response)
    assert "ZeroDivisionError" in failed.outputs[0].logs
    assert fixed.outputs[0].logs == "1.0\n"
    assert "ZeroDivisionError" in upstream.requests[1]["messages"][-1]["content"]
    assert response.output_text == "Fixed."


def test_usage_sums_the_upstream_counts(client, upstream):
    upstream.script([dict(python("1"), usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
                     {"text": "ok", "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13,
                                              "prompt_tokens_details": {"cached_tokens": 6},
                                              "completion_tokens_details": {"reasoning_tokens": 1}}}])
    response = client.responses.create(model=MODEL, input="go", tools=AUTO)
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (18, 5, 23)
    assert usage.input_tokens_details.cached_tokens == 6 and usage.output_tokens_details.reasoning_tokens == 1
    assert usage.input_tokens_details.cache_write_tokens == 0


def test_function_tools_pass_through_and_their_output_continues(client, upstream):
    upstream.script([{"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]}, {"text": "It is cold."}])
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}] + AUTO
    first = client.responses.create(model=MODEL, input="Weather in Oslo?", tools=tools, tool_choice="auto", include=[])
    (call,) = [i for i in first.output if i.type == "function_call"]
    assert call.name == "weather" and call.arguments == '{"city": "Oslo"}'
    second = client.responses.create(model=MODEL, previous_response_id=first.id, tools=tools, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "-5C"}])
    assert second.output_text == "It is cold."
    last = upstream.requests[-1]["messages"]
    assert last[-2]["tool_calls"][0]["id"] == call.call_id and last[-1] == {
        "role": "tool", "tool_call_id": call.call_id, "content": "-5C"}


def test_input_forms_and_includes_real_clients_send(client, upstream):
    upstream.script([{"text": "one"}, {"text": "two"}])
    client.responses.create(model=MODEL, input=[{"role": "user", "content": "plain"}],
                            include=["reasoning.encrypted_content"], tools=AUTO)
    assert upstream.requests[-1]["messages"][-1] == {"role": "user", "content": "plain"}
    client.responses.create(model=MODEL, tools=AUTO, input=[{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "typed"}, {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}])
    parts = upstream.requests[-1]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "typed"} and parts[1]["image_url"]["url"].startswith("data:image/png")


@pytest.mark.parametrize("body, status, param", [
    ({"input": "x", "tools": [{"type": "code_interpreter"}]}, 400, "tools[0].container"),
    ({"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "manual"}}]}, 400, None),
    ({"input": "x", "tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
    ({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, 400, "tools[0].type"),
    ({"input": "x", "previous_response_id": "resp_doesnotexist"}, 400, "previous_response_id"),
    ({"input": "x", "tools": [{"type": "code_interpreter", "container": "cntr_doesnotexist"}]}, 404, None),
    ({"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "2g"}}]},
     400, None),
    ({"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto",
                                                                          "file_ids": ["file-nope"]}}]}, 404, None),
])
def test_errors(client, body, status, param):
    with pytest.raises(openai.APIStatusError) as caught:
        client.post("/responses", body={"model": MODEL, **body}, cast_to=object)
    assert caught.value.status_code == status, caught.value.body
    if param:
        assert caught.value.body["param"] == param, caught.value.body
    if "previous_response_id" in body:
        assert caught.value.body["code"] == "previous_response_not_found"


def test_other_projects_responses_and_containers_are_404(client, other_client, upstream):
    upstream.script([{"text": "mine"}])
    mine = client.responses.create(model=MODEL, input="x")
    theirs = other_client.containers.create(name="theirs")
    for call in (lambda: other_client.responses.retrieve(mine.id), lambda: other_client.responses.delete(mine.id),
                 lambda: other_client.responses.input_items.list(mine.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="x", tools=[{"type": "code_interpreter", "container": theirs.id}])
    with pytest.raises(openai.BadRequestError):
        other_client.responses.create(model=MODEL, input="x", previous_response_id=mine.id)


def test_an_expired_container_is_a_400(client, server, upstream):
    made = client.containers.create(name="short", expires_after={"anchor": "last_active_at", "minutes": 1})
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        db.execute("UPDATE containers SET last_active_at = last_active_at - 61 WHERE id = ?", (made.id,))
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="x", tools=[{"type": "code_interpreter", "container": made.id}])


def test_delete_and_store_false(client, upstream):
    upstream.script([{"text": "kept"}, {"text": "not kept"}])
    kept = client.responses.create(model=MODEL, input="x")
    deleted = client.responses.delete(kept.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    gone = client.responses.create(model=MODEL, input="x", store=False)
    assert gone.output_text == "not kept"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(gone.id)


@pytest.mark.anyio
async def test_async_client(async_client, upstream):
    upstream.script([python("print(6 * 7)"), {"text": "42"}])
    response = await async_client.responses.create(model=MODEL, input="Multiply.", tools=AUTO, include=OUTPUTS)
    assert code_calls(response)[0].outputs[0].logs == "42\n" and response.output_text == "42"
    await async_client.close()


def test_background_then_cancel_interrupts_the_cell_and_keeps_the_container(client, upstream):
    marker = "executing-" + secrets.token_hex(8)
    upstream.script([python(f"import time\nx = 5\nopen('/mnt/data/{marker}', 'w').close()\ntime.sleep(120)")])
    container = client.containers.create(name="bg")
    tools = [{"type": "code_interpreter", "container": container.id}]
    stream = client.responses.create(model=MODEL, input="Sleep.", tools=tools, background=True, stream=True)
    seen = []
    for event in stream:
        seen.append(event.type)
        if event.type == "response.created":
            response_id = event.response.id
            assert event.response.status == "queued"
        if event.type == "response.code_interpreter_call.interpreting":
            break
    assert seen[:3] == ["response.created", "response.queued", "response.in_progress"]
    wait_for(lambda: executing(marker), timeout=60)
    cancelled = client.responses.cancel(response_id)
    assert cancelled.status == "cancelled"
    rest = [event.type for event in stream]
    assert "response.completed" not in rest
    after = client.responses.retrieve(response_id, include=OUTPUTS)
    assert after.status == "cancelled"
    (call,) = code_calls(after)
    assert call.status == "incomplete" and "KeyboardInterrupt" in call.outputs[0].logs
    upstream.script([python("print(x)"), {"text": "ok"}])
    again = client.responses.create(model=MODEL, input="Again.", tools=tools, include=OUTPUTS)
    assert code_calls(again)[0].outputs[0].logs == "5\n"  # the interrupted cell's state is kept


def test_deleting_the_container_during_a_cell_ends_the_response_and_spares_its_neighbour(client, upstream):
    marker = "executing-" + secrets.token_hex(8)
    doomed = client.containers.create(name="doomed")
    neighbour = client.containers.create(name="neighbour")
    upstream.script([python("y = 7"), {"text": "set"}])
    client.responses.create(model=MODEL, input="Set y.", tools=[{"type": "code_interpreter",
                                                                 "container": neighbour.id}])
    upstream.script([python(f"import time\nopen('/mnt/data/{marker}', 'w').close()\ntime.sleep(120)"),
                     {"text": "never"}])
    response = client.responses.create(model=MODEL, input="Sleep.", background=True,
                                       tools=[{"type": "code_interpreter", "container": doomed.id}])
    wait_for(lambda: executing(marker), timeout=60)
    client.containers.delete(doomed.id)
    wait_for(lambda: client.responses.retrieve(response.id).status not in ("queued", "in_progress"), timeout=30)
    assert not executing(marker)
    ended = client.responses.retrieve(response.id)
    assert ended.status == "failed" and ended.error.code == "server_error", ended.error
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(doomed.id)
    upstream.script([python("print(y)"), {"text": "ok"}])
    again = client.responses.create(model=MODEL, input="Read y.", include=OUTPUTS,
                                    tools=[{"type": "code_interpreter", "container": neighbour.id}])
    assert code_calls(again)[0].outputs[0].logs == "7\n"


def test_max_tool_calls_runs_that_many_code_calls_then_offers_no_code_tool(client, upstream):
    upstream.script([
        {"tool_calls": [{"name": "python", "arguments": {"code": "print('first')"}},
                        {"name": "python", "arguments": {"code": "print('second')"}}]},
        {"text": "Stopped there."},
    ])
    response = client.responses.create(model=MODEL, input="Run both.", tools=AUTO, include=OUTPUTS,
                                       max_tool_calls=1)
    assert response.status == "completed" and response.output_text == "Stopped there."
    assert response.max_tool_calls == 1
    assert client.responses.retrieve(response.id).max_tool_calls == 1
    first, second = code_calls(response)
    assert first.outputs[0].logs.strip() == "first"
    assert second.outputs[0].logs == "[not run: this response already ran the most code calls it may (max_tool_calls=1)]"
    offered = [[t["function"]["name"] for t in r.get("tools", [])] for r in upstream.requests]
    assert offered == [["python"], []]  # once the limit is reached, the model is not offered the tool
    told = [m["content"] for m in upstream.requests[1]["messages"] if m["role"] == "tool"]
    assert told[0].strip() == "first" and told[1].startswith("[not run")

"""Responses whose input carries the conversation so far, as frameworks that keep the history send
it (the Agents SDK's `to_input_list()`, pydantic-ai's `message_history`): earlier code calls, with
or without their outputs, and cited messages. Through the official SDK against the real server."""

import pytest

from tests.test_responses import AUTO, MODEL, OUTPUTS, code_calls
from tests.test_runs import python


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def replayed(response) -> list[dict]:
    """The response's output as a framework sends it back, without `None` fields."""
    return [item.model_dump(exclude_none=True) for item in response.output]


def tool_results(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_auto_reuses_the_container_of_a_code_call_sent_back_in_the_input(client, upstream):
    upstream.script([python("x = 20"), {"text": "x is set."}, python("print(x + 1)"), {"text": "21"}])
    first = client.responses.create(model=MODEL, input="Set x.", tools=AUTO, include=OUTPUTS)
    second = client.responses.create(model=MODEL, tools=AUTO, include=OUTPUTS, input=[
        {"role": "user", "content": "Set x."}, *replayed(first), {"role": "user", "content": "Add one."}])
    assert code_calls(second)[0].container_id == code_calls(first)[0].container_id
    assert code_calls(second)[0].outputs[0].logs == "21\n"
    # the input reads back as sent (strict SDK validation), the replayed items with their ids
    items = client.responses.input_items.list(second.id, order="asc", include=OUTPUTS).data
    assert [i.type for i in items] == ["message", "code_interpreter_call", "message", "message"]
    assert [i.id for i in items[1:3]] == [item.id for item in first.output]
    assert items[1].code == "x = 20" and items[1].outputs == code_calls(first)[0].outputs
    assert items[2].content[0].text == "x is set."


def test_a_code_call_sent_back_without_outputs_replays_what_the_model_read(client, upstream):
    upstream.script([python("print(6 * 7)"), {"text": "42."}, {"text": "Still 42."}])
    first = client.responses.create(model=MODEL, input="Multiply.", tools=AUTO)  # outputs not included: null
    (call,) = code_calls(first)
    assert call.outputs is None
    client.responses.create(model=MODEL, tools=AUTO, input=[
        {"role": "user", "content": "Multiply."}, *replayed(first), {"role": "user", "content": "Again?"}])
    assert [text.strip() for text in tool_results(upstream.requests[-1])] == ["42"]
    # A call this server never made (or made with other code) has nothing to replay.
    forged = dict(replayed(first)[0], code="print(1)")
    client.responses.create(model=MODEL, tools=AUTO, input=[forged, {"role": "user", "content": "And?"}])
    assert tool_results(upstream.requests[-1]) == ["[output not available]"]


def test_another_projects_container_in_the_input_is_not_reused(client, other_client, upstream):
    upstream.script([python("secret = 1"), {"text": "set"}, python("print('secret' in globals())"), {"text": "no"}])
    mine = client.responses.create(model=MODEL, input="Set it.", tools=AUTO)
    theirs = other_client.responses.create(model=MODEL, tools=AUTO, include=OUTPUTS, input=[
        *replayed(mine), {"role": "user", "content": "Read it."}])
    assert code_calls(theirs)[0].container_id != code_calls(mine)[0].container_id
    assert code_calls(theirs)[0].outputs[0].logs == "False\n"
    assert tool_results(upstream.requests[2]) == ["[output not available]"]  # nor is its result replayed

"""Streamed responses: the events of a response with a code call and a cited answer, in order,
through `stream=True` and `client.responses.stream()`, and a response the server dies in."""

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.helpers.server import start_server
from tests.test_responses import AUTO, MODEL, OUTPUTS, code_calls
from tests.test_runs import python, wait_for

CODE = "print(6 * 7)\n_ = open('/mnt/data/answer.txt', 'w').write('42')"
SCRIPT = [python(CODE), {"text": "See sandbox:/mnt/data/answer.txt for the answer."}]
EXPECTED = (
    ["response.created", "response.in_progress",
     "response.output_item.added", "response.code_interpreter_call.in_progress"]
    + ["response.code_interpreter_call_code.delta"] * 3
    + ["response.code_interpreter_call_code.done", "response.code_interpreter_call.interpreting",
       "response.code_interpreter_call.completed", "response.output_item.done",
       "response.output_item.added", "response.content_part.added"]
    + ["response.output_text.delta"] * 3
    + ["response.output_text.annotation.added", "response.output_text.done", "response.content_part.done",
       "response.output_item.done", "response.completed"])


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def squash_deltas(types: list[str]) -> list[str]:
    """Runs of one delta type as in EXPECTED: however many pieces the code or text came in, three."""
    out: list[str] = []
    for t in types:
        if t.endswith(".delta") and out[-3:] == [t] * 3:
            continue
        out.append(t)
    return out


def check_events(events) -> None:
    types = [e.type for e in events]
    assert squash_deltas(types) == EXPECTED, types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    call_added = events[2]
    assert call_added.output_index == 0 and call_added.item.status == "in_progress" and call_added.item.code == ""
    code = "".join(e.delta for e in events if e.type == "response.code_interpreter_call_code.delta")
    assert code == CODE
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[0].item.type == "code_interpreter_call" and done[0].item.outputs[0].logs == "42\n"
    assert done[1].item.type == "message" and done[1].output_index == 1
    assert {e.item_id for e in events if e.type == "response.output_text.delta"} == {done[1].item.id}
    (annotation,) = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text[annotation.start_index:annotation.end_index] == "sandbox:/mnt/data/answer.txt"
    final = events[-1].response
    assert final.status == "completed" and [i.type for i in final.output] == ["code_interpreter_call", "message"]
    assert final.output_text == text


def test_stream_true_events_in_order(client, upstream):
    upstream.script(list(SCRIPT))
    events = list(client.responses.create(model=MODEL, input="Answer.", tools=AUTO, include=OUTPUTS, stream=True))
    check_events(events)
    stored = client.responses.retrieve(events[-1].response.id, include=OUTPUTS)
    assert stored.output == events[-1].response.output


def test_responses_stream_helper(client, upstream):
    upstream.script(list(SCRIPT))
    with client.responses.stream(model=MODEL, input="Answer.", tools=AUTO, include=OUTPUTS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_events(events)
    assert final.output_text.startswith("See sandbox:/mnt/data/answer.txt")
    assert code_calls(final)[0].outputs[0].logs == "42\n"


def test_a_server_killed_mid_response_fails_it_after_the_restart(tmp_path, upstream):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url})
    try:
        with make_client(srv) as client:
            upstream.script([python("import time\ntime.sleep(120)")])
            response = client.responses.create(model=MODEL, input="Sleep.", tools=AUTO, background=True)
            wait_for(lambda: len(upstream.requests) == 1, timeout=60)
            srv.kill()
            srv.start()
            after = client.responses.retrieve(response.id)
            assert after.status == "failed" and after.error.code == "server_error"
            assert "restarted" in after.error.message
            upstream.script([{"text": "fine"}])
            assert client.responses.create(model=MODEL, input="Again.").output_text == "fine"
    finally:
        srv.stop()


def test_raw_sse_lines_name_each_event(server, upstream):
    upstream.script([{"text": "Hello."}])
    with httpx.stream("POST", f"{server.base_url}/responses", timeout=60,
                      headers={"Authorization": f"Bearer {server.api_key}"},
                      json={"model": MODEL, "input": "Hi", "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line]
    names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert len([line for line in lines if line.startswith("data: ")]) == len(names)


def test_a_failing_model_ends_the_stream_with_response_failed(client, upstream):
    upstream.script([{"error": 400, "message": "the model broke"}])
    events = list(client.responses.create(model=MODEL, input="Hi", stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert "the model broke" in failed.error.message
    assert client.responses.retrieve(failed.id).status == "failed"


def test_a_background_response_streamed_again_while_it_goes_on_and_not_once_ended(client, upstream):
    upstream.script([python("import time\ntime.sleep(1)\n'slept'"), {"text": "Awake."}])
    response = client.responses.create(model=MODEL, input="Sleep.", tools=AUTO, background=True)
    wait_for(lambda: len(upstream.requests) == 1, timeout=60)
    events = list(client.responses.retrieve(response.id, stream=True, starting_after=1))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "Awake."
    assert [e.sequence_number for e in events] == list(range(2, 2 + len(events)))

    def refused() -> bool:  # once it has ended, one process keeps no events: retrieve it without `stream`
        try:
            list(client.responses.retrieve(response.id, stream=True))
        except openai.BadRequestError as error:
            return "not in progress" in str(error)
        return False
    assert wait_for(refused, timeout=10)

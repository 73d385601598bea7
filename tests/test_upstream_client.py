"""The upstream model client against the scripted Chat Completions server, which the official
`openai` SDK also accepts as a real endpoint."""

import json

import anyio
import openai
import pytest

from codeinterp.models.client import ChatClient, Completion, TextDelta, ToolCallDelta, UpstreamError
from tests.helpers.upstream import ScriptedUpstream


@pytest.fixture
def upstream():
    server = ScriptedUpstream()
    yield server
    server.close()


def collect(client: ChatClient, body: dict) -> list:
    async def run():
        try:
            return [event async for event in client.stream(body)]
        finally:
            await client.aclose()
    return anyio.run(run)


def test_the_official_sdk_reads_the_scripted_stream(upstream):
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "print(1)"}}]}, {"text": "All done."}])
    sdk = openai.OpenAI(base_url=upstream.base_url, api_key="x")
    chunks = list(sdk.chat.completions.create(model="scripted-model", messages=[{"role": "user", "content": "hi"}],
                                              stream=True))
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                        for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(arguments) == {"code": "print(1)"}
    answer = sdk.chat.completions.create(model="scripted-model", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "All done."
    assert [m.id for m in sdk.models.list()] == ["scripted-model"]


def test_client_streams_text_and_usage(upstream):
    upstream.script([{"text": "Hello there, world", "usage": {"prompt_tokens": 7, "completion_tokens": 3,
                                                              "total_tokens": 10}}])
    events = collect(ChatClient(upstream.base_url, "key"), {"model": "m", "messages": []})
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, world"
    assert len([e for e in events if isinstance(e, TextDelta)]) > 1
    final = events[-1]
    assert isinstance(final, Completion) and final.text == "Hello there, world" and final.finish_reason == "stop"
    assert final.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert upstream.requests[0]["stream"] is True and upstream.requests[0]["stream_options"] == {"include_usage": True}


def test_client_assembles_tool_calls_from_pieces(upstream):
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "x = 1\nx + 1"}},
                                     {"name": "lookup", "arguments": {"q": "a"}}]}])
    events = collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len([d for d in deltas if d.index == 0]) > 2
    final = events[-1]
    assert [c.name for c in final.tool_calls] == ["python", "lookup"]
    assert json.loads(final.tool_calls[0].arguments) == {"code": "x = 1\nx + 1"}
    assert final.finish_reason == "tool_calls" and all(c.id for c in final.tool_calls)


def test_client_retries_server_errors_then_succeeds(upstream):
    upstream.script([{"error": 503, "message": "busy"}, {"text": "ok"}])
    events = collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    assert events[-1].text == "ok" and len(upstream.requests) == 2


def test_client_reports_the_upstream_message_on_client_errors(upstream):
    upstream.script([{"error": 400, "message": "model 'nope' does not exist"}])
    with pytest.raises(UpstreamError) as failure:
        collect(ChatClient(upstream.base_url), {"model": "nope", "messages": []})
    assert failure.value.status_code == 400 and "model 'nope' does not exist" in failure.value.message


def test_client_reports_an_unreachable_endpoint():
    with pytest.raises(UpstreamError, match="Could not reach"):
        collect(ChatClient("http://127.0.0.1:9/v1"), {"model": "m", "messages": []})


def test_list_models(upstream):
    async def run(client):
        try:
            return await client.list_models()
        finally:
            await client.aclose()
    assert anyio.run(run, ChatClient(upstream.base_url)) == {"scripted-model"}
    upstream.models = None
    assert anyio.run(run, ChatClient(upstream.base_url)) is None

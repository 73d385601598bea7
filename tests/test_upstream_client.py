"""The upstream model client against the scripted Chat Completions server, which the official
`openai` SDK also accepts as a real endpoint."""

import json

import anyio
import openai
import pytest
from multidict import CIMultiDict

from codeinterp.upstream import client as client_module
from codeinterp.upstream.client import ChatClient, Completion, TextDelta, ToolCallDelta, UpstreamError
from tests.helpers.upstream import ScriptedUpstream


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(client_module, "RETRY_DELAYS", (0.05, 0.1))


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


def test_client_keeps_one_connection_for_many_streamed_answers(upstream):
    """A stream read to its end leaves the connection in the pool (no new TCP or TLS handshake per turn)."""
    upstream.script([{"text": "first"}, {"tool_calls": [{"name": "python", "arguments": {"code": "1"}}]},
                     {"text": "third"}])

    async def run():
        client = ChatClient(upstream.base_url)
        try:
            return [[e async for e in client.stream({"model": "m", "messages": []})][-1] for _ in range(3)]
        finally:
            await client.aclose()
    answers = anyio.run(run)
    assert [a.text for a in answers] == ["first", "", "third"] and answers[1].tool_calls[0].name == "python"
    assert upstream.connections == 1


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


def test_strict_sdk_accepts_every_chunk_and_the_usage_chunk(upstream):
    upstream.script([{"text": "Four.", "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}])
    sdk = openai.OpenAI(base_url=upstream.base_url, api_key="secret-key", _strict_response_validation=True)
    chunks = list(sdk.chat.completions.create(model="scripted-model", messages=[{"role": "user", "content": "2+2"}],
                                              stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Four."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    assert upstream.headers[-1]["authorization"] == "Bearer secret-key"


def test_client_sends_the_api_key_and_keeps_the_request(upstream):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "python", "parameters": {"type": "object"}}}]}
    collect(ChatClient(upstream.base_url, "upstream-key"), body)
    assert upstream.headers[0]["authorization"] == "Bearer upstream-key"
    sent = upstream.requests[0]
    assert {k: sent[k] for k in body} == body


def test_client_gives_up_after_retrying_and_says_what_the_endpoint_said(upstream):
    upstream.script([{"error": 500, "message": "overloaded"}] * 3)
    with pytest.raises(UpstreamError) as failure:
        collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    assert failure.value.status_code == 500 and "overloaded" in failure.value.message
    assert len(upstream.requests) == 3


def test_client_reports_a_stream_cut_short(upstream):
    upstream.script([{"text": "This answer never ends properly", "cut": True}])
    with pytest.raises(UpstreamError, match="closed the stream"):
        collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})


def test_client_times_out_on_a_silent_endpoint(upstream):
    upstream.script([{"text": "late", "delay": 2}])
    with pytest.raises(UpstreamError, match="did not answer within 0.5 seconds"):
        collect(ChatClient(upstream.base_url, timeout=0.5), {"model": "m", "messages": []})


def test_client_keeps_a_length_finish(upstream):
    upstream.script([{"text": "cut by the token limit", "finish_reason": "length"}])
    events = collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    assert events[-1].finish_reason == "length" and events[-1].text == "cut by the token limit"


def test_client_retries_a_rate_limit_after_the_wait_it_asks_for(upstream):
    upstream.script([{"error": 429, "message": "slow down", "headers": {"retry-after-ms": "50"}}, {"text": "ok"}])
    events = collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    assert events[-1].text == "ok" and len(upstream.requests) == 2


def test_retry_after_headers_set_the_wait_when_short():
    def wait(headers):
        return client_module._retry_delay(CIMultiDict(headers), 0)
    assert wait({"retry-after-ms": "250"}) == 0.25
    assert wait({"retry-after": "3"}) == 3.0
    assert wait({"retry-after": "3600"}) == client_module.RETRY_DELAYS[0]  # too long: our own backoff
    assert wait({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == client_module.RETRY_DELAYS[0]


def test_client_reports_a_rate_limit_that_lasts(upstream):
    upstream.script([{"error": 429, "message": "quota exceeded"}] * 3)
    with pytest.raises(UpstreamError) as failure:
        collect(ChatClient(upstream.base_url), {"model": "m", "messages": []})
    assert failure.value.status_code == 429 and "quota exceeded" in failure.value.message


def test_a_callable_fallback_answers_by_the_request(upstream):
    def by_request(body):
        last = body["messages"][-1]
        if last["role"] == "tool":
            return {"text": f"saw {last['content']}"}
        return {"tool_calls": [{"name": "python", "arguments": {"code": "1"}}]}
    upstream.fallback = by_request
    first = collect(ChatClient(upstream.base_url), {"model": "m", "messages": [{"role": "user", "content": "go"}]})
    call = first[-1].tool_calls[0]
    second = collect(ChatClient(upstream.base_url), {"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                                              "function": {"name": call.name, "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "1"}]})
    assert second[-1].text == "saw 1"
    upstream.reset()
    assert upstream.requests == [] and upstream.fallback == {"text": "done"}


def test_client_goes_through_the_proxy_the_environment_names(upstream, monkeypatch):
    """HTTP_PROXY reaches an endpoint the client cannot reach itself; NO_PROXY bypasses the proxy."""
    upstream.script([{"text": "through the proxy"}])
    monkeypatch.setenv("HTTP_PROXY", upstream.base_url.removesuffix("/v1"))  # it answers absolute URIs too
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    events = collect(ChatClient("http://model.invalid/v1"), {"model": "scripted-model", "messages": []})
    assert events[-1].text == "through the proxy"
    assert upstream.requests

    monkeypatch.setenv("NO_PROXY", "model.invalid")
    with pytest.raises(UpstreamError, match="Could not reach the model endpoint"):
        collect(ChatClient("http://model.invalid/v1"), {"model": "scripted-model", "messages": []})

"""What runs send to the model endpoint and how its failures end a run, through the real server
and the official SDK: the key and request the endpoint receives, token usage summed on the run,
a model that stays silent past CODEINTERP_MODEL_TIMEOUT_SECONDS, a stream cut short."""

import json

import pytest

server_env = {"CODEINTERP_MODEL_TIMEOUT_SECONDS": "1", "CODEINTERP_MODEL_API_KEY": "upstream-secret"}


@pytest.fixture(scope="module")
def assistant(client):
    return client.beta.assistants.create(model="scripted-model", instructions="Use the python tool.",
                                         tools=[{"type": "code_interpreter"}], temperature=0.3)


@pytest.fixture(autouse=True)
def fresh_upstream(upstream):
    upstream.reset()
    yield upstream
    upstream.reset()


def run_once(client, assistant, text="Go."):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                    poll_interval_ms=50)


def test_the_endpoint_gets_the_key_the_model_and_the_python_tool(client, assistant, upstream):
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "6 * 7"}}]}, {"text": "42."}])
    run = run_once(client, assistant, "What is six times seven?")
    assert run.status == "completed", run.last_error
    assert [h["authorization"] for h in upstream.headers] == ["Bearer upstream-secret"] * 2
    first, second = upstream.requests
    assert first["model"] == "scripted-model" and first["stream"] is True
    assert first["stream_options"] == {"include_usage": True} and first["temperature"] == 0.3
    python = next(t["function"] for t in first["tools"] if t["function"]["name"] == "python")
    assert python["parameters"]["properties"]["code"]["type"] == "string"
    assert python["parameters"]["required"] == ["code"]
    assert first["messages"][-1]["role"] == "user"
    assert "What is six times seven?" in json.dumps(first["messages"][-1]["content"])
    call = second["messages"][-2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"code": "6 * 7"}
    assert second["messages"][-1]["role"] == "tool" and "42" in second["messages"][-1]["content"]


def test_run_usage_sums_the_endpoints_token_counts(client, assistant, upstream):
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "1"}}],
                      "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}},
                     {"text": "One.", "usage": {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135}}])
    run = run_once(client, assistant)
    assert run.status == "completed", run.last_error
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (230, 25, 255)


def test_a_run_that_fails_after_a_tool_call_keeps_the_tokens_it_used(client, assistant, upstream):
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "1"}}],
                      "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}},
                     {"text": "Half an answer", "cut": True}])
    run = run_once(client, assistant)
    assert run.status == "failed"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (100, 20, 120)


def test_a_silent_endpoint_fails_the_run_after_the_timeout(client, assistant, upstream):
    upstream.script([{"text": "too late", "delay": 3}])
    run = run_once(client, assistant)
    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert "did not answer within 1 seconds" in run.last_error.message


def test_a_stream_cut_short_fails_the_run(client, assistant, upstream):
    upstream.script([{"text": "An answer that stops in the middle of", "cut": True}])
    run = run_once(client, assistant)
    assert run.status == "failed"
    assert "closed the stream before the answer was complete" in run.last_error.message

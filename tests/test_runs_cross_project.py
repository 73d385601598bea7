"""Another project's key against every run route: each answers 404 and changes nothing, whether
the run is active, waiting for tool outputs or ended."""

import openai
import pytest

from tests.test_runs import MODEL, ask, make_assistant, python, steps_of, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def refused(call) -> None:
    with pytest.raises(openai.NotFoundError):
        call()


def test_another_projects_key_reaches_no_run_route(client, other_client, upstream):
    assistant = make_assistant(client, tools=[{"type": "code_interpreter"}, LOOKUP])
    upstream.script([python("1 + 1"), {"tool_calls": [{"name": "lookup", "arguments": {}}]}])
    thread, waiting = ask(client, assistant, "Compute, then look up.")
    assert waiting.status == "requires_action"
    (call,) = waiting.required_action.submit_tool_outputs.tool_calls
    step = steps_of(client, waiting)[0]
    runs, steps = other_client.beta.threads.runs, other_client.beta.threads.runs.steps
    refused(lambda: runs.retrieve(waiting.id, thread_id=thread.id))
    refused(lambda: runs.list(thread.id))
    refused(lambda: steps.list(waiting.id, thread_id=thread.id))
    refused(lambda: steps.retrieve(step.id, thread_id=thread.id, run_id=waiting.id))
    refused(lambda: runs.update(waiting.id, thread_id=thread.id, metadata={"taken": "yes"}))
    refused(lambda: runs.submit_tool_outputs(waiting.id, thread_id=thread.id,
                                             tool_outputs=[{"tool_call_id": call.id, "output": "forged"}]))
    refused(lambda: runs.cancel(waiting.id, thread_id=thread.id))
    # A run on its own thread naming our assistant, and a run on our thread with its own assistant.
    own_assistant = make_assistant(other_client)
    own_thread = other_client.beta.threads.create()
    refused(lambda: runs.create(own_thread.id, assistant_id=assistant.id))
    refused(lambda: runs.create(thread.id, assistant_id=own_assistant.id))
    refused(lambda: other_client.beta.threads.create_and_run(assistant_id=assistant.id))
    assert other_client.beta.threads.runs.list(own_thread.id).data == []

    # Nothing changed: the run still waits for our outputs, unmodified.
    unchanged = client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id)
    assert unchanged.status == "requires_action" and unchanged.metadata == {}
    upstream.script([{"text": "Looked up."}])
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=waiting.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}],
        poll_interval_ms=100)
    assert done.status == "completed", done.last_error
    assert upstream.requests[-1]["messages"][-1]["content"] == "ok"

    # An ended run, through every reading route.
    refused(lambda: runs.retrieve(done.id, thread_id=thread.id))
    refused(lambda: steps.list(done.id, thread_id=thread.id))
    refused(lambda: runs.cancel(done.id, thread_id=thread.id))


def test_another_projects_key_cannot_read_or_cancel_an_active_run(client, other_client, upstream):
    """The run being driven is read from the engine's memory (the fast path), not only the database."""
    upstream.script([{"text": "Slowly.", "delay": 5}])
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Take your time."}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    wait_for(lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress")
    refused(lambda: other_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id))
    refused(lambda: other_client.beta.threads.runs.cancel(run.id, thread_id=thread.id))
    refused(lambda: other_client.beta.threads.runs.steps.list(run.id, thread_id=thread.id))
    done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert done.status == "completed"

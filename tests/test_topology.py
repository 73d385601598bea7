"""Two API replicas on one PostgreSQL and one S3-compatible store (moto in server mode): two
`codeinterp serve` processes, one database, one bucket. Requests spread over both (create on
one, poll and stream on the other), a thread's runs go to the replica holding its sandbox
session, a client reconnecting to the other replica mid-stream misses nothing, a replica killed
with -9 mid-run leaves nothing stuck (its runs and responses end `failed` on the others within the
stated bound, what it stored is kept) and the runs waiting in its queue are run by the other."""

import secrets

import openai
import pytest

from tests.helpers.postgres import postgres_database
from tests.helpers.s3 import MotoServer
from tests.helpers.server import ServerProcess
from tests.test_responses import AUTO, MODEL, OUTPUTS
from tests.test_runs import make_assistant, python, steps_of, wait_for
from tests.test_runs_streaming import AFTER_TOOL_OUTPUTS, Recorder, squash

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

# A killed replica's runs end within DEAD_AFTER_SECONDS + HEARTBEAT_SECONDS (12 s), the runs waiting
# in its queue start on another within 14 s; the wait is generous for a loaded machine (tests never
# assert timings).
LOST_REPLICA_WAIT_SECONDS = 90
SLOW_CELL = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.5)\n'slept'"


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def streamed_run(client: openai.OpenAI, thread_id: str, assistant_id: str):
    """A run created streamed on this client's replica, so driven there; the stream is left at once."""
    stream = client.beta.threads.runs.create(thread_id, assistant_id=assistant_id, stream=True)
    try:
        created = next(iter(stream))
    finally:
        stream.close()
    assert created.event == "thread.run.created"
    return created.data


class Topology:
    def __init__(self, tmp_path_factory, database_url: str, upstream, moto: MotoServer) -> None:
        self.key = "sk-ci-topology-" + secrets.token_hex(16)
        self.bucket = moto.new_bucket()  # one blob store for all
        self.env = {"CODEINTERP_DATABASE_URL": database_url, "CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                    "CODEINTERP_API_KEY": self.key, **self.bucket.server_env}
        self.tmp_path_factory = tmp_path_factory
        self.replicas: list[ServerProcess] = []

    def replica(self) -> ServerProcess:
        proc = ServerProcess(self.tmp_path_factory.mktemp("replica"), env=self.env).start()
        self.replicas.append(proc)
        return proc

    def client(self, replica: ServerProcess) -> openai.OpenAI:
        return openai.OpenAI(base_url=replica.base_url, api_key=self.key, max_retries=0, timeout=60,
                             _strict_response_validation=True)

    def stop(self) -> None:
        for proc in self.replicas:
            proc.stop()


@pytest.fixture(scope="module")
def topology(tmp_path_factory, upstream):
    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        with postgres_database() as database_url:
            topo = Topology(tmp_path_factory, database_url, upstream, moto)
            try:
                topo.a, topo.b = topo.replica(), topo.replica()
                yield topo
            finally:
                topo.stop()
    finally:
        moto.stop()


def test_a_run_created_on_one_replica_is_polled_and_read_on_the_other(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    upstream.script([python("6 * 7"), {"text": "It is 42."}])
    assistant = make_assistant(a)
    thread = b.beta.threads.create(messages=[{"role": "user", "content": "Compute."}])
    run = a.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    done = wait_for(lambda: (r := b.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "completed"
                    and r, timeout=120)
    assert done.status == "completed", done.last_error
    assert steps_of(b, done)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "42"
    messages = a.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "It is 42."


def test_the_seed_flow_with_files_spread_over_both_replicas(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    uploaded = a.files.create(file=("sales.csv", b"region,amount\nnorth,3\nsouth,4\n"), purpose="assistants")
    upstream.script([python("import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\n"
                            "df.to_csv('/mnt/data/total.csv', index=False)\nint(df.amount.sum())"),
                     {"text": "The total is 7: [total](sandbox:/mnt/data/total.csv)."}])
    assistant = b.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}],
                                         tool_resources={"code_interpreter": {"file_ids": [uploaded.id]}})
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Sum it."}])
    run = b.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    done = wait_for(lambda: (r := a.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "completed"
                    and r, timeout=120)
    assert steps_of(a, done)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "7"
    answer = a.beta.threads.messages.list(thread.id, order="desc").data[0]
    (annotation,) = answer.content[0].text.annotations
    generated = annotation.file_path.file_id
    assert a.files.content(generated).read() == b"region,amount\nnorth,3\nsouth,4\n"  # made on b, read on a
    assert b.files.content(uploaded.id).read() == a.files.content(uploaded.id).read()


def test_a_threads_next_run_goes_to_the_replica_holding_its_session_unless_streamed(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    upstream.script([python("kept = 1"), {"text": "Set."}, python("kept"), {"text": "Read."},
                     python("kept"), {"text": "Lost."}])
    assistant = make_assistant(a)
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Set it."}])
    with a.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()  # streamed: run by a, whose bubblewrap session now holds the thread's state
    assert stream.get_final_run().status == "completed"
    # created on b, queued for a (which holds the thread's bubblewrap session): the state is there
    b.beta.threads.messages.create(thread.id, role="user", content="Read it.")
    second = b.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100)
    assert second.status == "completed", second.last_error
    assert steps_of(b, second)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "1"
    # a streamed run is run by the replica that streams it: a new session there, and the model is told
    b.beta.threads.messages.create(thread.id, role="user", content="Read it again.")
    with b.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
    assert stream.get_final_run().status == "completed"
    tool_result = upstream.requests[-1]["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "another server replica" in tool_result["content"] and "NameError" in tool_result["content"]


def test_a_streamed_run_on_one_replica_while_the_other_polls(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    upstream.script([python(SLOW_CELL), {"text": "Done."}])
    assistant = make_assistant(b)
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Sleep."}])
    seen, polled = [], []
    with b.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            seen.append(event.event)
            if event.event == "thread.run.step.created" and not polled:  # the code call starts
                polled.append(a.beta.threads.runs.retrieve(event.data.run_id, thread_id=thread.id))
        run = stream.get_final_run()
    assert polled[0].id == run.id and polled[0].status in ("in_progress", "completed")
    assert seen[0] == "thread.run.created" and seen[-1] == "thread.run.completed"
    assert a.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"


def test_a_client_reconnecting_to_the_other_replica_mid_stream_misses_nothing(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    upstream.script([python(SLOW_CELL), {"text": "All done."}])
    first = []
    with a.responses.create(model=MODEL, input="Sleep.", tools=AUTO, include=OUTPUTS, background=True,
                            stream=True) as stream:
        for event in stream:
            first.append(event)
            if event.type == "response.code_interpreter_call.interpreting":
                break  # the connection drops mid-response
    response_id = first[0].response.id
    rest = list(b.responses.retrieve(response_id, stream=True, starting_after=first[-1].sequence_number))
    events = first + rest
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "All done."
    stored = a.responses.retrieve(response_id, include=OUTPUTS)
    assert stored.status == "completed" and stored.output == events[-1].response.output
    # from the start, on either replica, once it has ended: the same events
    again = list(a.responses.retrieve(response_id, stream=True))
    assert [e.model_dump() for e in again] == [e.model_dump() for e in events]


def test_tool_outputs_submitted_on_the_other_replica_resume_the_run_and_stream_from_there(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"key": {"type": "string"}}}}}
    assistant = a.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}, lookup])
    upstream.script([{"tool_calls": [{"name": "lookup", "arguments": {"key": "answer"}}]},
                     {"text": "The answer is 42."}])
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Look it up."}])
    run = a.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    handler = Recorder()
    with b.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
            event_handler=handler) as stream:
        stream.until_done()
    assert squash(handler.events) == AFTER_TOOL_OUTPUTS
    assert handler.text == "The answer is 42."
    assert a.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"


def test_cancel_on_one_replica_reaches_the_run_and_the_response_the_other_drives(topology, upstream):
    a, b = topology.client(topology.a), topology.client(topology.b)
    upstream.script([python("import time\ntime.sleep(600)")])
    assistant = make_assistant(a)
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Sleep."}])
    run = streamed_run(a, thread.id, assistant.id)
    wait_for(lambda: steps_of(b, run), timeout=120)  # the cell runs on replica a
    assert b.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    ended = wait_for(lambda: (r := b.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "cancelled"
                     and r, timeout=60)
    assert [s.status for s in steps_of(a, ended)] == ["cancelled"]

    upstream.script([python("import time\ntime.sleep(600)")])
    response = a.responses.create(model=MODEL, input="Sleep.", tools=AUTO, background=True)
    wait_for(lambda: len(upstream.requests) == 2, timeout=60)
    cancelled = b.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    assert a.responses.retrieve(response.id).status == "cancelled"


def test_a_replica_killed_mid_run_leaves_nothing_stuck(topology, upstream):
    doomed = topology.replica()
    d, b = topology.client(doomed), topology.client(topology.b)
    upstream.script([python("kept = 1"), python("import time\ntime.sleep(600)")])
    assistant = make_assistant(b)
    uploaded = d.files.create(file=("kept.txt", b"stored before the kill"), purpose="assistants")
    thread = b.beta.threads.create(messages=[{"role": "user", "content": "Work long."}])
    run = streamed_run(d, thread.id, assistant.id)
    wait_for(lambda: len(steps_of(b, run)) == 2, timeout=120)  # the first cell ran, the second runs
    doomed.kill()
    assert b.files.content(uploaded.id).read() == b"stored before the kill"

    after = wait_for(lambda: (r := b.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "failed"
                     and r, timeout=LOST_REPLICA_WAIT_SECONDS)
    assert after.last_error.code == "server_error" and "replica" in after.last_error.message
    steps = steps_of(b, after)
    assert [s.status for s in steps] == ["completed", "failed"]  # what it stored before dying is kept
    # the thread goes on, on the live replica
    upstream.script([{"text": "Back."}])
    b.beta.threads.messages.create(thread.id, role="user", content="Again.")
    again = b.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100)
    assert again.status == "completed", again.last_error


def test_a_response_followed_on_one_replica_ends_when_the_replica_running_it_is_killed(topology, upstream):
    doomed = topology.replica()
    d, b = topology.client(doomed), topology.client(topology.b)
    upstream.script([python("import time\ntime.sleep(600)")])
    response = d.responses.create(model=MODEL, input="Sleep.", tools=AUTO, background=True)
    wait_for(lambda: len(upstream.requests) == 1, timeout=60)
    with b.responses.retrieve(response.id, stream=True) as stream:
        doomed.kill()
        events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = b.responses.retrieve(response.id)
    assert failed.status == "failed" and "replica" in failed.error.message


def test_runs_waiting_in_a_killed_replicas_queue_are_run_by_another(topology, upstream):
    doomed = topology.replica()
    d, b = topology.client(doomed), topology.client(topology.b)
    upstream.script([python("kept = 1"), {"text": "Set."}, python("6 * 7"), {"text": "Done elsewhere."}])
    assistant = make_assistant(b)
    thread = b.beta.threads.create(messages=[{"role": "user", "content": "Set it."}])
    first = streamed_run(d, thread.id, assistant.id)
    wait_for(lambda: b.beta.threads.runs.retrieve(first.id, thread_id=thread.id).status == "completed", timeout=120)
    doomed.kill()
    # Created on b right after: the doomed replica still counts as alive and holds the thread's
    # session, so the run's job waits in its queue; once it is found lost, the job is handed to
    # the shared queue and b runs it.
    b.beta.threads.messages.create(thread.id, role="user", content="Compute.")
    run = b.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    done = wait_for(lambda: (r := b.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status
                    not in ("queued", "in_progress") and r, timeout=LOST_REPLICA_WAIT_SECONDS)
    assert done.status == "completed", done.last_error
    assert steps_of(b, done)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip().endswith("42")
    assert b.beta.threads.messages.list(thread.id, order="desc").data[0].content[0].text.value == "Done elsewhere."
    tool_result = upstream.requests[-1]["messages"][-1]
    assert "another server replica" in tool_result["content"]  # the session died with its replica

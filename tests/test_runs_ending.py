"""How runs end, seen through the API: the event sequences of incomplete, cancelled and expired
runs, a server stopped or killed mid-run, and a thread's sandbox that expires between runs."""

import glob
import json
import os
import secrets
import signal
import threading

import httpx
import pytest

from tests.conftest import make_client
from tests.helpers.server import start_server
from tests.test_runs import ask, executing, make_assistant, python, session_group_exists, steps_of, wait_for
from tests.test_runs_streaming import squash

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def stream_run(server, thread_id: str, body: dict, on_event=None) -> list[tuple[str, str]]:
    """POST a streamed run and read it to the end: (event name, data) pairs, `done` included."""
    events = []
    with httpx.stream("POST", f"{server.base_url}/threads/{thread_id}/runs", timeout=300,
                      headers={"Authorization": f"Bearer {server.api_key}"}, json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, line[len("data: "):]))
                if on_event:
                    on_event(name)
    return events


def long_cell(marker: str) -> dict:
    return python(f"import time\nopen('/mnt/data/{marker}', 'w').close()\ntime.sleep(120)")


def test_incomplete_run_ends_its_message_and_itself_incomplete(server, client, upstream):
    upstream.script([{"text": "The answer is cut", "finish_reason": "length"}])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say a lot."}])
    events = stream_run(server, thread.id, {"assistant_id": assistant.id, "max_completion_tokens": 256})
    assert squash([name for name, _ in events]) == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress",
        "thread.message.created", "thread.message.in_progress", "thread.message.delta", "thread.message.incomplete",
        "thread.run.step.completed", "thread.run.incomplete", "done"]
    ended = json.loads(events[-2][1])
    assert ended["status"] == "incomplete" and ended["incomplete_details"] == {"reason": "max_completion_tokens"}

    run = client.beta.threads.runs.retrieve(ended["id"], thread_id=thread.id)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete" and message.incomplete_details.reason == "max_tokens"
    assert message.content[0].text.value == "The answer is cut"


def test_cancelled_run_events(server, client, upstream):
    marker = "executing-" + secrets.token_hex(8)
    upstream.script([long_cell(marker)])
    assistant = make_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
    runs = []

    def cancel_when_executing():
        wait_for(lambda: executing(marker), timeout=120)
        run_id = client.beta.threads.runs.list(thread.id).data[0].id
        runs.append(client.beta.threads.runs.cancel(run_id, thread_id=thread.id))

    canceller = threading.Thread(target=cancel_when_executing)
    canceller.start()
    events = stream_run(server, thread.id, {"assistant_id": assistant.id})
    canceller.join()
    assert runs[0].status == "cancelling"
    assert squash([name for name, _ in events]) == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
        "thread.run.cancelling", "thread.run.step.delta",  # the interrupted cell's traceback
        "thread.run.step.cancelled", "thread.run.cancelled", "done"]
    outputs = json.loads([data for name, data in events if name == "thread.run.step.delta"][-1])
    assert "KeyboardInterrupt" in json.dumps(outputs)
    assert json.loads(events[-2][1])["cancelled_at"] is not None


def test_expired_run_events(tmp_path, upstream, database_env):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                      "CODEINTERP_RUN_EXPIRY_SECONDS": "5", **database_env})
    try:
        with make_client(srv) as client:
            upstream.script([long_cell("executing-" + secrets.token_hex(8))])
            assistant = make_assistant(client)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
            events = stream_run(srv, thread.id, {"assistant_id": assistant.id})
            assert squash([name for name, _ in events]) == [
                "thread.run.created", "thread.run.queued", "thread.run.in_progress",
                "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
                "thread.run.step.expired", "thread.run.expired", "done"]
            run = client.beta.threads.runs.retrieve(json.loads(events[-2][1])["id"], thread_id=thread.id)
            assert run.status == "expired"
            assert [s.status for s in steps_of(client, run)] == ["expired"]
    finally:
        srv.stop()


def sandbox_processes(marker: str) -> list[str]:
    """The processes (host PIDs) whose /mnt/data holds MARKER."""
    return [path.split("/")[2] for path in glob.glob(f"/proc/[0-9]*/root/mnt/data/{marker}")]


def pids_group(pid: str) -> str:
    """The directory of the process's group for the pids controller (cgroup v1), or its v2 group."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return "/sys/fs/cgroup/pids" + path
    return "/sys/fs/cgroup" + line.split(":", 2)[2]


WHICH_SESSION = "import re\nprint(re.search('sbx_[0-9a-f]+', open('/proc/self/cgroup').read())[0])"


def test_a_server_stopped_mid_stream_ends_the_stream_with_an_error_event(tmp_path, upstream):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url})
    try:
        with make_client(srv) as client:
            marker = "executing-" + secrets.token_hex(8)
            upstream.script([long_cell(marker)])
            assistant = make_assistant(client)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Wait."}])
            stopper = threading.Thread(target=lambda: (wait_for(lambda: executing(marker), timeout=120), srv.stop()))
            stopper.start()
            try:
                events = stream_run(srv, thread.id, {"assistant_id": assistant.id})
            finally:
                stopper.join()
            assert [name for name, _ in events][-2:] == ["error", "done"]
            assert json.loads(events[-2][1])["error"]["type"] == "server_error"
    finally:
        srv.stop()


def test_a_server_killed_mid_run_fails_the_run_and_lists_nothing_half_written(tmp_path, upstream, database_env):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url, **database_env})
    try:
        with make_client(srv) as client:
            upstream.script([python("kept = 1"), {"text": "A long answer, written slowly. " * 10, "chunk_delay": 1}])
            assistant = make_assistant(client)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Answer slowly."}])
            run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
            wait_for(lambda: [m for m in client.beta.threads.messages.list(thread.id).data if m.role == "assistant"],
                     timeout=120)
            srv.kill()

            srv.start()
            after = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            assert after.status == "failed" and after.failed_at is not None
            assert after.last_error.code == "server_error" and "restarted" in after.last_error.message
            assert [(s.type, s.status) for s in steps_of(client, after)] == [("tool_calls", "completed"),
                                                                              ("message_creation", "failed")]
            messages = client.beta.threads.messages.list(thread.id, order="asc").data
            assert [(m.role, m.status) for m in messages] == [("user", "completed"), ("assistant", "incomplete")]
            assert messages[1].incomplete_details.reason == "run_failed"
            # the thread goes on
            upstream.script([{"text": "Again."}])
            client.beta.threads.messages.create(thread.id, role="user", content="Once more.")
            again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                             poll_interval_ms=100)
            assert again.status == "completed", again.last_error
    finally:
        srv.stop()


def test_a_server_killed_mid_run_leaves_no_sandbox_after_its_restart(tmp_path, upstream):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url})
    try:
        with make_client(srv) as client:
            marker = "executing-" + secrets.token_hex(8)
            upstream.script([python(f"open('/mnt/data/{marker}', 'w').close()\n" + WHICH_SESSION + "\n"
                                    "import time\nwhile True:\n    time.sleep(1)")])
            assistant = make_assistant(client)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Spin."}])
            client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
            wait_for(lambda: executing(marker), timeout=120)
            group = pids_group(sandbox_processes(marker)[0])
            assert "/sbx_" in group
            srv.kill()  # the kernel outlives it (reparented), until the next start removes what was left
            srv.start()
            try:
                wait_for(lambda: not sandbox_processes(marker) and not os.path.exists(group), timeout=30)
            finally:
                for pid in sandbox_processes(marker):
                    os.kill(int(pid), signal.SIGKILL)
    finally:
        srv.stop()


def test_a_threads_sandbox_expiring_is_seen_through_the_api(tmp_path, upstream):
    srv = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                      "CODEINTERP_SANDBOX_IDLE_EXPIRY_SECONDS": "3"})
    try:
        with make_client(srv) as client:
            assistant = make_assistant(client)
            upstream.script([python("kept = 1\n" + WHICH_SESSION), {"text": "Kept."}])
            thread, first = ask(client, assistant, "Keep a variable.")
            session_id = steps_of(client, first)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip()
            wait_for(lambda: not session_group_exists(session_id), timeout=60)  # it expired, idle

            upstream.script([python("kept"), {"text": "Lost it."}])
            _, again = ask(client, assistant, "Still there?", thread=thread)
            assert again.status == "completed", again.last_error
            logs = steps_of(client, again)[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs
            assert "NameError" in logs
            told = upstream.requests[-1]["messages"][-1]["content"]
            assert "earlier session ended" in told
    finally:
        srv.stop()

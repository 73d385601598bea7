"""Runs through the real server on the `remote` sandbox backend: two `codeinterp sandbox-host`
processes on loopback run the sessions; the server reaches them over HTTP and knows them only by
configuration. The seed's flows, sessions on both hosts, and kill -9 of a host mid-cell."""

import io
import secrets

import pytest

from tests.helpers.sandbox_hosts import SECRET, start_hosts
from tests.helpers.server import start_server
from tests.test_runs import ask, executing, last_message, logs_of, make_assistant, python, steps_of, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    hosts = start_hosts(tmp_path_factory)
    yield hosts
    for host in hosts:
        host.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream, hosts):
    env = {"CODEINTERP_MODEL_BASE_URL": upstream.base_url, "CODEINTERP_SANDBOX_BACKEND": "remote",
           "CODEINTERP_SANDBOX_HOSTS": ",".join(host.url for host in hosts), "CODEINTERP_SANDBOX_HOST_SECRET": SECRET}
    proc = start_server(tmp_path_factory.mktemp("server"), env=env)
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def sessions_on(hosts) -> list[int]:
    return [host.health()["sessions"] for host in hosts]


def test_seed_flow_with_sessions_on_both_hosts(client, upstream, hosts):
    data = client.files.create(file=("data.csv", io.BytesIO(b"n\n1\n2\n3\n")), purpose="assistants")
    assistant = make_assistant(client, tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    before = sessions_on(hosts)
    text = "Saved [the squares](sandbox:/mnt/data/squares.csv)."
    runs = []
    for _ in range(2):  # two threads, two sessions: one on each host (the least loaded first)
        upstream.script([
            python("import pandas as pd\ndf = pd.read_csv('/mnt/data/data.csv')\n"
                   "df.assign(sq=df.n ** 2).to_csv('/mnt/data/squares.csv', index=False)\nprint(df.n.sum())"),
            {"text": text},
        ])
        runs.append(ask(client, assistant, "Square them."))
    assert [after - was for after, was in zip(sessions_on(hosts), before)] == [1, 1]
    for thread, run in runs:
        assert run.status == "completed", run.last_error
        assert logs_of(client, run) == "6\n"
        (annotation,) = last_message(client, thread).content[0].text.annotations
        assert client.files.content(annotation.file_path.file_id).read() == b"n,sq\n1,1\n2,4\n3,9\n"

    thread, _ = runs[0]  # state stays in the thread's session, on its host
    upstream.script([python("import matplotlib.pyplot as plt\nplt.plot(df.n)\nplt.show()\nlen(df)"),
                     {"text": "Here it is."}])
    _, run = ask(client, assistant, "Plot it.", thread=thread)
    assert run.status == "completed", run.last_error
    assert logs_of(client, run) == "3\n"
    message = last_message(client, thread)
    assert [block.type for block in message.content] == ["image_file", "text"]
    assert client.files.content(message.content[0].image_file.file_id).read().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_host_killed_mid_cell_ends_the_cell_and_the_thread_goes_on_elsewhere(client, upstream, hosts):
    marker = "executing-" + secrets.token_hex(8)
    assistant = make_assistant(client)
    upstream.script([python("kept = 'before'"), {"text": "kept"}])
    before = sessions_on(hosts)
    thread, first = ask(client, assistant, "Keep it.")
    assert first.status == "completed", first.last_error
    # the thread's session is on the host whose count went up
    (doomed,) = [host for host, was, now in zip(hosts, before, sessions_on(hosts)) if now == was + 1]
    survivor = next(host for host in hosts if host is not doomed)
    upstream.script([python(f"import time\nprint('started', flush=True)\nopen('/mnt/data/{marker}', 'w').close()\n"
                            "time.sleep(120)"), {"text": "The host went away."}])
    client.beta.threads.messages.create(thread.id, role="user", content="Wait a minute.")
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    wait_for(lambda: executing(marker), timeout=120)
    on_survivor = survivor.health()["sessions"]
    doomed.kill()
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert final.status == "completed", final.last_error
    logs = logs_of(client, final)
    assert logs.startswith("started\n") and "sandbox host of this session was lost" in logs
    tool_result = next(m for m in reversed(upstream.requests[-1]["messages"]) if m["role"] == "tool")
    assert "state" in tool_result["content"] and "lost" in tool_result["content"]

    upstream.script([python("print('kept' in globals())"), {"text": "A new session."}])
    _, after = ask(client, assistant, "Again.", thread=thread)
    assert after.status == "completed", after.last_error
    assert logs_of(client, after) == "False\n"
    assert survivor.health()["sessions"] == on_survivor + 1

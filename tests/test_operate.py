"""Operating a server: /readyz, Prometheus metrics at /metrics, JSON logs with request, project and
run ids, and SIGTERM letting runs in flight finish (or failing them after the grace period)."""

import json
import secrets
import signal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_client
from tests.helpers.s3 import MotoServer
from tests.helpers.server import start_server
from tests.test_runs import ask, executing, make_assistant, python, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def samples(server, headers=None) -> dict[tuple[str, tuple], float]:
    """The /metrics samples: (name, sorted labels) -> value."""
    r = httpx.get(server.url + "/metrics", headers=headers or {})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def wait_ready(server) -> httpx.Response:
    return wait_for(lambda: (r := httpx.get(server.url + "/readyz")).status_code == 200 and r, timeout=120)


def test_ready_and_metrics_of_requests_runs_cells_and_sessions(tmp_path, upstream):
    proc = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url})
    try:
        ready = wait_ready(proc)
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "blobs": "ok", "sandboxes": "ok"}}
        with make_client(proc) as client:
            file = client.files.create(file=("a.csv", b"a\n1\n"), purpose="assistants")
            client.files.retrieve(file.id)
            upstream.script([python("2 + 2"), {"text": "4."}])
            thread, run = ask(client, make_assistant(client), "What is 2 + 2?")
            assert run.status == "completed"
        found = samples(proc)
        assert value(found, "codeinterp_http_requests_total", method="POST", route="/v1/files", status="200") == 1
        assert value(found, "codeinterp_http_requests_total", method="GET", route="/v1/files/{file_id}",
                     status="200") == 1
        polls = value(found, "codeinterp_http_requests_total", method="GET",
                      route="/v1/threads/{thread_id}/runs/{run_id}", status="200")
        assert polls is not None and polls >= 1
        for status in ("queued", "in_progress", "completed"):
            assert value(found, "codeinterp_runs_total", status=status) == 1
        assert value(found, "codeinterp_run_duration_seconds_count", status="completed") == 1
        assert value(found, "codeinterp_cell_duration_seconds_count") == 1
        assert value(found, "codeinterp_sandbox_sessions") == 1  # the thread's session
        assert value(found, "codeinterp_sandbox_warm_sessions") is not None
        assert value(found, "codeinterp_runs_active") == 0
        assert value(found, "codeinterp_run_queue_depth") == 0
        # an unknown path is counted under one label, not its own
        httpx.get(proc.url + "/no/such/" + secrets.token_hex(4))
        assert value(samples(proc), "codeinterp_http_requests_total", method="GET", route="unmatched",
                     status="404") == 1
    finally:
        proc.stop()


def test_metrics_token(tmp_path):
    token = secrets.token_hex(16)
    proc = start_server(tmp_path, env={"CODEINTERP_METRICS_TOKEN": token})
    try:
        refused = httpx.get(proc.url + "/metrics")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(proc.url + "/metrics", headers={"Authorization": f"Bearer {proc.api_key}"}).status_code == 401
        assert samples(proc, {"Authorization": f"Bearer {token}"})
    finally:
        proc.stop()


def test_readyz_is_503_in_openai_error_shape_when_the_blob_store_is_gone(tmp_path):
    moto = MotoServer(tmp_path / "moto.log").start()
    (tmp_path / "server").mkdir()
    try:
        bucket = moto.new_bucket()
        proc = start_server(tmp_path / "server", env=bucket.server_env)
        try:
            wait_ready(proc)
            moto.stop()
            r = httpx.get(proc.url + "/readyz", timeout=30)
            assert r.status_code == 503
            error = r.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "not_ready"
            assert error["message"].startswith("Not ready: blobs: ")
            assert "database" not in error["message"] and "sandboxes" not in error["message"]
            assert httpx.get(proc.url + "/healthz").status_code == 200  # alive all the same
        finally:
            proc.stop()
    finally:
        moto.stop()


def log_lines(proc) -> list[dict]:
    return [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]


def test_json_logs_carry_request_project_and_run_ids(tmp_path, upstream):
    proc = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                       "CODEINTERP_LOG_FORMAT": "json"})
    try:
        with make_client(proc) as client:
            listed = client.files.with_raw_response.list()
            upstream.script([{"text": "Hello."}])
            thread, run = ask(client, make_assistant(client), "Hi")
        proc.stop()
        lines = proc.log().splitlines()
        assert lines and all(line.startswith("{") for line in lines), lines[:5]
        entries = log_lines(proc)
        access = [e for e in entries if e["logger"] == "codeinterp.access"]
        request = next(e for e in access if e["request_id"] == listed.headers["x-request-id"])
        assert (request["method"], request["route"], request["path"], request["status"]) == (
            "GET", "/v1/files", "/v1/files", 200)
        assert request["project_id"] == "proj_default" and request["duration_ms"] >= 0
        created = [e for e in access if e["method"] == "POST" and e["route"] == "/v1/threads/{thread_id}/runs"]
        assert [(e["run_id"], e["thread_id"], e["status"]) for e in created] == [(run.id, thread.id, 200)]
        assert any(e["message"] == "Application shutdown complete." for e in entries)
    finally:
        proc.stop()


def test_readable_logs_by_default(tmp_path):
    proc = start_server(tmp_path)
    try:
        r = httpx.get(proc.base_url + "/files", headers={"Authorization": f"Bearer {proc.api_key}"})
        proc.stop()
        assert "/healthz" not in proc.log()  # probes are not logged (start_server polled it)
        line = next(line for line in proc.log().splitlines() if "codeinterp.access" in line)
        assert "GET /v1/files 200" in line and f"request_id={r.headers['x-request-id']}" in line
        assert "project_id=proj_default" in line and not line.startswith("{")
    finally:
        proc.stop()


def marked_cell(seconds: int, last: str = "") -> tuple[str, dict]:
    """A marker file's name, and a model turn whose cell drops it, then sleeps `seconds`."""
    marker = "executing-" + secrets.token_hex(8)
    return marker, python(f"import time\nopen('/mnt/data/{marker}', 'w').close()\ntime.sleep({seconds}){last}")


def sigterm_while_executing(proc, marker: str) -> None:
    """Once the cell that drops `marker` runs, SIGTERM the server and wait for it to exit."""
    wait_for(lambda: executing(marker), timeout=120)
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(120) in (0, -signal.SIGTERM)


def test_sigterm_lets_a_run_in_flight_finish(tmp_path, upstream):
    proc = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                       "CODEINTERP_SHUTDOWN_GRACE_SECONDS": "60"})
    try:
        with make_client(proc) as client:
            marker, cell = marked_cell(3, last="\n'slept'")
            upstream.script([cell, {"text": "Done after the shutdown began."}])
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sleep."}])
            run = client.beta.threads.runs.create(thread.id, assistant_id=make_assistant(client).id)
            sigterm_while_executing(proc, marker)
            proc.start()
            after = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            assert after.status == "completed", after.last_error
            text = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.value
            assert text == "Done after the shutdown began."
    finally:
        proc.stop()


def test_sigterm_fails_a_run_still_going_after_the_grace_period(tmp_path, upstream):
    proc = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                       "CODEINTERP_SHUTDOWN_GRACE_SECONDS": "1"})
    try:
        with make_client(proc) as client:
            marker, cell = marked_cell(120)
            upstream.script([cell])
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Sleep long."}])
            run = client.beta.threads.runs.create(thread.id, assistant_id=make_assistant(client).id)
            sigterm_while_executing(proc, marker)
            assert "marked" not in proc.log()  # ended by this process, not left for the next start
            proc.start()
            after = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            assert after.status == "failed" and after.last_error.code == "server_error"
            assert "shut down" in after.last_error.message
            steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
            assert [s.status for s in steps] == ["failed"]
            assert "marked" not in proc.log()
    finally:
        proc.stop()


def test_sigterm_fails_a_response_still_going_after_the_grace_period(tmp_path, upstream):
    proc = start_server(tmp_path, env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url,
                                       "CODEINTERP_SHUTDOWN_GRACE_SECONDS": "1"})
    try:
        with make_client(proc) as client:
            marker, cell = marked_cell(120)
            upstream.script([cell])
            response = client.responses.create(model="scripted-model", input="Sleep long.", background=True,
                                               tools=[{"type": "code_interpreter", "container": {"type": "auto"}}])
            sigterm_while_executing(proc, marker)
            assert "marked" not in proc.log()  # ended by this process, not left for the next start
            proc.start()
            after = client.responses.retrieve(response.id)
            assert after.status == "failed" and after.error.code == "server_error"
            assert "shut down" in after.error.message
            assert [item.status for item in after.output] == ["incomplete"]
    finally:
        proc.stop()

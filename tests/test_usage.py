"""Code interpreter sessions per project and day: recorded by `record_session` on a real
(migrated) database, read back through the store, `codeinterp usage`, and
`GET /v1/organization/usage/code_interpreter_sessions` in OpenAI's shape."""

import time

import anyio
import httpx
import pytest

from codeinterp.store.db import Database, run_migrations
from codeinterp.store.ids import now
from codeinterp.store.usage import DAY, record_session, sessions_by_bucket, usage_by_day
from tests.helpers.postgres import postgres_database

T0 = 1_730_419_200  # 2024-11-01 00:00:00 UTC


def sqlite_url(path) -> str:
    return f"sqlite+aiosqlite:///{path / 'codeinterp.db'}"


async def record(url: str, sessions: list[tuple[str, str, int]]) -> None:
    """Record (project id, session id, started_at) rows as the run engine does: one commit each."""
    db = Database(url)
    await db.connect()
    try:
        for project_id, session_id, started_at in sessions:
            async with db.session() as s:
                await record_session(s, project_id, session_id, started_at=started_at)
                await s.commit()
    finally:
        await db.close()


async def read(url: str, fn, *args, **kwargs):
    db = Database(url)
    await db.connect()
    try:
        async with db.session() as s:
            return await fn(s, *args, **kwargs)
    finally:
        await db.close()


SESSIONS = [
    ("proj_a", "sess_1", T0 + 10),
    ("proj_a", "sess_2", T0 + 3600),
    ("proj_b", "sess_3", T0 + 7200),
    ("proj_a", "sess_4", T0 + DAY + 5),
    ("proj_b", "sess_5", T0 + 2 * DAY + DAY - 1),
    ("proj_a", "sess_6", T0 + 3 * DAY),  # the first second of the fourth day
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def usage_db(request, tmp_path_factory):
    """A migrated database (SQLite, and the test PostgreSQL when there is one) with SESSIONS recorded."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("usage"))
        run_migrations(url)
        anyio.run(record, url, SESSIONS)
        yield url
        return
    with postgres_database() as url:
        run_migrations(url)
        anyio.run(record, url, SESSIONS)
        yield url


def test_usage_by_day_counts_each_project_per_utc_day(usage_db):
    rows = anyio.run(read, usage_db, usage_by_day, None, T0, T0 + 4 * DAY)
    assert rows == [(T0, "proj_a", 2), (T0, "proj_b", 1), (T0 + DAY, "proj_a", 1),
                    (T0 + 2 * DAY, "proj_b", 1), (T0 + 3 * DAY, "proj_a", 1)]
    assert anyio.run(read, usage_db, usage_by_day, "proj_b", T0, T0 + 4 * DAY) == [
        (T0, "proj_b", 1), (T0 + 2 * DAY, "proj_b", 1)]


def test_usage_by_day_keeps_to_the_range_but_names_whole_days(usage_db):
    # from 01:00 on day one to the end of day three: sess_1 (00:00:10) and sess_6 (day four) are outside
    rows = anyio.run(read, usage_db, usage_by_day, None, T0 + 3600, T0 + 3 * DAY)
    assert rows == [(T0, "proj_a", 1), (T0, "proj_b", 1), (T0 + DAY, "proj_a", 1), (T0 + 2 * DAY, "proj_b", 1)]


def test_sessions_by_bucket_by_hour_and_project_filter(usage_db):
    counts = anyio.run(read, usage_db, sessions_by_bucket, T0, T0 + DAY, 3600)
    assert counts == {T0: {"proj_a": 1}, T0 + 3600: {"proj_a": 1}, T0 + 7200: {"proj_b": 1}}
    assert anyio.run(read, usage_db, sessions_by_bucket, T0, T0 + DAY, 3600, ["proj_b"]) == {T0 + 7200: {"proj_b": 1}}
    assert anyio.run(read, usage_db, sessions_by_bucket, T0, T0 + DAY, 3600, []) == {}


def test_recording_a_session_twice_counts_it_once(usage_db):
    anyio.run(record, usage_db, [("proj_twice", "sess_x", T0 + 10 * DAY), ("proj_twice", "sess_x", T0 + 10 * DAY + 5)])
    assert anyio.run(read, usage_db, usage_by_day, "proj_twice", T0, T0 + 11 * DAY) == [(T0 + 10 * DAY, "proj_twice", 1)]


# ---- over HTTP and through the CLI, against the real server -------------------------------------

def server_db_url(srv) -> str:
    return sqlite_url(srv.data_dir)


@pytest.fixture(scope="module")
def projects(server):
    """Two projects with a key each (made by `codeinterp keys create`), with sessions recorded in both."""
    from codeinterp.store.projects import project_for_key

    keys = {"mine": server.create_key("usage-mine"), "other": server.create_key("usage-other")}
    url = server_db_url(server)

    async def project_ids():
        db = Database(url)
        await db.connect()
        try:
            async with db.session() as s:
                return {name: await project_for_key(s, key) for name, key in keys.items()}
        finally:
            await db.close()

    ids = anyio.run(project_ids)
    mine, other = ids["mine"], ids["other"]
    assert mine and other and mine != other
    anyio.run(record, url, [(mine, "s_m1", T0 + 5), (mine, "s_m2", T0 + 4000), (mine, "s_m3", T0 + 2 * DAY + 1),
                            (other, "s_o1", T0 + 6), (other, "s_o2", T0 + DAY + 1)])
    return {"mine": mine, "other": other, "mine_key": keys["mine"], "other_key": keys["other"]}


def get_usage(srv, params, key):
    return httpx.get(f"{srv.base_url}/organization/usage/code_interpreter_sessions", params=params,
                     headers={"Authorization": f"Bearer {key}"}, timeout=30)


RESULT = "organization.usage.code_interpreter_sessions.result"


def test_usage_api_answers_openai_shape_per_day(server, projects):
    response = get_usage(server, {"start_time": T0, "end_time": T0 + 3 * DAY}, projects["mine_key"])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "page", "has_more": False, "next_page": None,
        "data": [
            {"object": "bucket", "start_time": T0, "end_time": T0 + DAY,
             "results": [{"object": RESULT, "num_sessions": 2, "project_id": None}]},
            {"object": "bucket", "start_time": T0 + DAY, "end_time": T0 + 2 * DAY, "results": []},
            {"object": "bucket", "start_time": T0 + 2 * DAY, "end_time": T0 + 3 * DAY,
             "results": [{"object": RESULT, "num_sessions": 1, "project_id": None}]},
        ]}


def test_usage_api_groups_by_project_and_sees_only_the_keys_project(server, projects):
    mine = get_usage(server, {"start_time": T0, "end_time": T0 + 2 * DAY, "group_by": ["project_id"]},
                     projects["mine_key"]).json()
    assert [b["results"] for b in mine["data"]] == [
        [{"object": RESULT, "num_sessions": 2, "project_id": projects["mine"]}], []]
    theirs = get_usage(server, {"start_time": T0, "end_time": T0 + 2 * DAY, "group_by": ["project_id"]},
                       projects["other_key"]).json()
    assert [b["results"] for b in theirs["data"]] == [
        [{"object": RESULT, "num_sessions": 1, "project_id": projects["other"]}],
        [{"object": RESULT, "num_sessions": 1, "project_id": projects["other"]}]]
    # asking for another project's usage gives nothing of it
    filtered = get_usage(server, {"start_time": T0, "end_time": T0 + 2 * DAY,
                                        "project_ids": [projects["other"]]}, projects["mine_key"]).json()
    assert all(b["results"] == [] for b in filtered["data"])


def test_usage_api_pages_with_limit_and_next_page(server, projects):
    first = get_usage(server, {"start_time": T0, "end_time": T0 + 3 * DAY, "limit": 2}, projects["mine_key"]).json()
    assert [b["start_time"] for b in first["data"]] == [T0, T0 + DAY]
    assert first["has_more"] is True and first["next_page"]
    second = get_usage(server, {"start_time": T0, "end_time": T0 + 3 * DAY, "limit": 2,
                                      "page": first["next_page"]}, projects["mine_key"]).json()
    assert [b["start_time"] for b in second["data"]] == [T0 + 2 * DAY]
    assert second["data"][0]["results"][0]["num_sessions"] == 1
    assert second["has_more"] is False and second["next_page"] is None


def test_usage_api_hourly_buckets(server, projects):
    body = get_usage(server, {"start_time": T0, "end_time": T0 + 3 * 3600, "bucket_width": "1h"},
                     projects["mine_key"]).json()
    assert [sum(r["num_sessions"] for r in b["results"]) for b in body["data"]] == [1, 1, 0]


@pytest.mark.parametrize("params, param", [
    ({}, "start_time"),
    ({"start_time": "yesterday"}, "start_time"),
    ({"start_time": T0, "bucket_width": "1w"}, "bucket_width"),
    ({"start_time": T0, "limit": 32}, "limit"),
    ({"start_time": T0, "limit": 0}, "limit"),
    ({"start_time": T0, "end_time": T0}, "end_time"),
    ({"start_time": -1}, "start_time"),
    ({"start_time": T0, "page": "not-a-cursor"}, "page"),
    ({"start_time": T0, "group_by": ["model"]}, "group_by"),
])
def test_usage_api_rejects_bad_parameters_with_openai_errors(server, params, param):
    response = get_usage(server, params, server.api_key)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["param"].startswith(param)


def test_usage_api_needs_a_key(server):
    response = httpx.get(f"{server.base_url}/organization/usage/code_interpreter_sessions",
                         params={"start_time": T0})
    assert response.status_code == 401 and "error" in response.json()


def test_usage_cli_prints_sessions_per_project_and_day(server, projects):
    today = now() - now() % DAY
    anyio.run(record, server_db_url(server), [(projects["mine"], "s_today_1", today + 1),
                                                   (projects["mine"], "s_today_2", today + 2),
                                                   (projects["other"], "s_yesterday", today - DAY + 7)])
    output = server.run_cli("usage", "--days", "2").stdout
    lines = [line.split() for line in output.strip().splitlines()]
    day = time.strftime("%Y-%m-%d", time.gmtime(today))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(today - DAY))
    assert lines == [["day", "project", "name", "sessions"],
                     [yesterday, projects["other"], "usage-other", "1"],
                     [day, projects["mine"], "usage-mine", "2"],
                     ["total", "3"]]  # the sessions of 2024 are outside the last two days


def test_served_description_matches_the_contract(contract, served):
    theirs = contract["paths"]["/organization/usage/code_interpreter_sessions"]["get"]
    ours = served["paths"]["/v1/organization/usage/code_interpreter_sessions"]["get"]
    assert ours["operationId"] == theirs["operationId"]
    assert {p["name"] for p in ours["parameters"] if p["in"] == "query"} == {p["name"] for p in theirs["parameters"]}
    assert [p["name"] for p in ours["parameters"] if p.get("required")] == ["start_time"]
    for name in ("UsageResponse", "UsageTimeBucket", "UsageCodeInterpreterSessionsResult"):
        schema, served_schema = contract["components"]["schemas"][name], served["components"]["schemas"][name]
        assert set(served_schema["properties"]) == set(schema["properties"]), name
        assert set(served_schema.get("required", [])) == set(schema.get("required", [])), name


def test_runs_count_one_session_per_thread(server, client, upstream):
    """A thread's runs share its sandbox session: two runs on one thread and one on another are 2 sessions."""
    before = now()
    assistant = client.beta.assistants.create(model="scripted-model", tools=[{"type": "code_interpreter"}])
    first, second = client.beta.threads.create(), client.beta.threads.create()
    code_turn = {"tool_calls": [{"name": "python", "arguments": {"code": "1 + 1"}}]}
    for thread in (first, first, second):
        upstream.script([code_turn, {"text": "Two."}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                       poll_interval_ms=50)
        assert run.status == "completed", run.last_error
    body = get_usage(server, {"start_time": before - 60, "bucket_width": "1h", "limit": 2,
                              "group_by": ["project_id"]}, server.api_key).json()
    assert [r["num_sessions"] for b in body["data"] for r in b["results"]] == [2]
    assert body["data"][0]["results"][0]["project_id"] == "proj_default"

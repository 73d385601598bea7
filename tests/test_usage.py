"""Code interpreter sessions per project and day: recorded by `record_session` on a real
(migrated) database, read back through the store, `codeinterp usage`, and
`GET /v1/organization/usage/code_interpreter_sessions` in OpenAI's shape."""

import anyio
import pytest

from codeinterp.store.db import Database, run_migrations
from codeinterp.store.usage import DAY, record_session, sessions_by_bucket, usage_by_day

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


@pytest.fixture(scope="module")
def usage_db(tmp_path_factory):
    url = sqlite_url(tmp_path_factory.mktemp("usage"))
    run_migrations(url)
    anyio.run(record, url, SESSIONS)
    return url


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


def test_recording_a_session_twice_counts_it_once(tmp_path):
    url = sqlite_url(tmp_path)
    run_migrations(url)
    anyio.run(record, url, [("proj_a", "sess_x", T0), ("proj_a", "sess_x", T0 + 5)])
    assert anyio.run(read, url, usage_by_day, None, T0, T0 + DAY) == [(T0, "proj_a", 1)]

"""The store on SQLite and on a real PostgreSQL: migrations, keys, files and their blobs, pagination."""

import asyncio

import obstore
import pytest
from sqlalchemy import select

from codeinterp.store.pagination import PageQuery as ListQuery, paginate
from codeinterp.store import files as file_store
from codeinterp.store.db import Database, run_migrations
from codeinterp.store.errors import NotFound
from codeinterp.store.files import File, file_to_dict
from codeinterp.store.ids import new_id, now
from codeinterp.store.projects import (
    DEFAULT_PROJECT_ID, create_api_key, list_api_keys, project_for_key, revoke_api_key,
)
from tests.helpers.postgres import postgres_database



async def create_file(session, project_id: str, filename: str, data, purpose: str = file_store.OUTPUT_PURPOSE):
    """A file from bytes (or a path, or an open file) as the run engine makes them: blob first, then its row."""
    file_id, size = await file_store.store_blob(data)
    return await file_store.add_file_row(session, file_id, project_id, filename, size, purpose)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_database() as database:
        yield database


@pytest.fixture
def blobs(tmp_path):
    store = file_store.configure_blobs(tmp_path / "blobs")
    yield store
    file_store._blob_store = None


def run(database_url: str, work):
    """Migrate, then run `work(db)` in a fresh event loop."""
    run_migrations(database_url)

    async def main():
        db = Database(database_url)
        await db.connect()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def test_ids_look_like_openai_ids():
    assert new_id("file").startswith("file-") and len(new_id("file")) == 29
    for prefix in ("asst", "thread", "msg", "run", "step", "cntr", "cfile"):
        value = new_id(prefix)
        assert value.startswith(prefix + "_") and len(value) == len(prefix) + 25 and value[len(prefix) + 1:].isalnum()
    assert len({new_id("run") for _ in range(1000)}) == 1000
    assert abs(now() - __import__("time").time()) < 2


def test_migrations_run_twice_and_keep_data(database_url, blobs):
    async def create(db):
        async with db.session() as s:
            row = await create_file(s, DEFAULT_PROJECT_ID, "a.txt", b"hello", "assistants")
            await s.commit()
            return row.id

    file_id = run(database_url, create)

    async def read(db):
        async with db.session() as s:
            return (await s.get(File, file_id)).filename

    assert run(database_url, read) == "a.txt"


def test_keys_are_hashed_per_project_and_revocable(database_url):
    async def work(db):
        async with db.session() as s:
            row, key = await create_api_key(s, "analytics")
            _, default_key = await create_api_key(s)
            await s.commit()
        assert key.startswith("sk-ci-") and len(key) > 40
        assert row.key_hash != key and key not in row.key_hash
        async with db.session() as s:
            project = await project_for_key(s, key)
            assert project and project != DEFAULT_PROJECT_ID
            assert await project_for_key(s, default_key) == DEFAULT_PROJECT_ID
            assert await project_for_key(s, key + "x") is None
            names = {name for _, name in await list_api_keys(s)}
            assert names == {"analytics", "default"}
            await revoke_api_key(s, row.id)
            await s.commit()
        async with db.session() as s:
            assert await project_for_key(s, key) is None
            with pytest.raises(NotFound):
                await revoke_api_key(s, "key_missing")

    run(database_url, work)


def test_files_blobs_and_isolation(database_url, blobs, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x00\x01" * 5000)

    async def work(db):
        async with db.session() as s:
            a = await create_file(s, "proj_a", "/mnt/data/out.csv", b"x,y\n")
            b = await create_file(s, "proj_a", "copy.bin", source, "assistants")
            await s.commit()
        assert (a.purpose, a.bytes, a.mime_type, a.status) == ("assistants_output", 4, "text/csv", "processed")
        assert file_to_dict(a)["object"] == "file"
        async with db.session() as s:
            blob = await file_store.content_source(s, "proj_a", b.id)
            assert b"".join([chunk async for chunk in blob.chunks()]) == source.read_bytes()
            assert await file_store.content_source(s, "proj_b", b.id) is None
            with pytest.raises(NotFound):
                await file_store.get_file(s, "proj_b", a.id)
            with pytest.raises(NotFound):
                await file_store.delete_file(s, "proj_b", a.id)
        async with db.session() as s:
            await file_store.delete_file(s, "proj_a", a.id)
        async with db.session() as s:
            assert await s.get(File, a.id) is None
        assert await blobs.stat(a.id) is None and await blobs.stat(b.id) is not None

    run(database_url, work)


def test_sweep_removes_unfinished_uploads_and_orphans(database_url, blobs):
    async def work(db):
        async with db.session() as s:
            kept = await create_file(s, "proj_a", "kept.txt", b"kept")
            await s.commit()
        obstore.put(blobs.store, "tmp/upload-cut", b"an upload complete under tmp/, never renamed (a crash)")
        blobs.write_bytes("file-orphan", b"no row")
        async with db.session() as s:
            assert await file_store.sweep_blobs(s, older_than=3600) == 0  # too young to be an orphan
            assert await file_store.sweep_blobs(s) == 2
        assert blobs.names() == [kept.id]
        assert list((blobs.root / "tmp").iterdir()) == []

    run(database_url, work)


def test_pagination_orders_pages_and_cursors(database_url, blobs):
    async def work(db):
        async with db.session() as s:
            ids = []
            for n in range(5):
                row = await create_file(s, "proj_a", f"{n}.txt", b"n")
                ids.append(row.id)
            await create_file(s, "proj_b", "other.txt", b"n")
            await s.commit()
        stmt = select(File).where(File.project_id == "proj_a")

        async def page(**kw):
            async with db.session() as s:
                q = ListQuery(**{"limit": 20, "order": "desc", "after": None, "before": None, **kw})
                return await paginate(s, stmt, File, q, file_to_dict, order_column=File.sequence)

        everything = await page(order="asc")
        assert [f["id"] for f in everything["data"]] == ids
        assert (everything["first_id"], everything["last_id"], everything["has_more"]) == (ids[0], ids[-1], False)
        assert [f["id"] for f in (await page())["data"]] == ids[::-1]
        first = await page(order="asc", limit=2)
        assert [f["id"] for f in first["data"]] == ids[:2] and first["has_more"]
        second = await page(order="asc", limit=2, after=ids[1])
        assert [f["id"] for f in second["data"]] == ids[2:4] and second["has_more"]
        last = await page(order="asc", limit=2, after=ids[3])
        assert [f["id"] for f in last["data"]] == ids[4:] and not last["has_more"]
        before = await page(order="asc", limit=2, before=ids[3])
        assert [f["id"] for f in before["data"]] == ids[1:3] and before["has_more"]
        desc_after = await page(limit=2, after=ids[2])
        assert [f["id"] for f in desc_after["data"]] == [ids[1], ids[0]] and not desc_after["has_more"]
        empty = await page(after=ids[0])
        assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}

    run(database_url, work)


def test_sqlite_sessions_take_turns_and_the_loop_goes_on(tmp_path):
    """The SQLite engine runs statements on the calling loop through one connection: a session
    that waits (here for a sleep) while holding the write lock makes the next session wait for its
    turn without blocking the loop, and both writes land."""
    target = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    events = []

    async def holder(db, took_lock: asyncio.Event):
        async with db.session() as s:
            await file_store.add_file_row(s, "file-first", "proj_a", "first.txt", 1, "assistants")
            took_lock.set()
            await asyncio.sleep(0.3)
            await s.commit()
            events.append("first committed")

    async def follower(db):
        async with db.session() as s:
            await file_store.add_file_row(s, "file-second", "proj_a", "second.txt", 1, "assistants")
            await s.commit()
            events.append("second committed")

    async def work(db):
        took_lock = asyncio.Event()
        first = asyncio.create_task(holder(db, took_lock))
        await took_lock.wait()
        second = asyncio.create_task(follower(db))
        ticks = 0
        while not second.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await first
        await second
        async with db.session() as s:
            ids = (await s.execute(select(File.id).order_by(File.id))).scalars().all()
        return ticks, ids

    ticks, ids = run(target, work)
    assert events == ["first committed", "second committed"]
    assert ids == ["file-first", "file-second"]
    assert ticks >= 10  # the loop ran other work while the second session waited


def test_sqlite_reports_constraint_errors_and_rolls_back(tmp_path):
    from sqlalchemy.exc import IntegrityError

    target = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"

    async def work(db):
        async with db.session() as s:
            await file_store.add_file_row(s, "file-same", "proj_a", "a.txt", 1, "assistants")
            await s.commit()
        with pytest.raises(IntegrityError):
            async with db.session() as s:
                await file_store.add_file_row(s, "file-other", "proj_a", "b.txt", 1, "assistants")
                await file_store.add_file_row(s, "file-same", "proj_a", "c.txt", 1, "assistants")
        async with db.session() as s:  # the failed transaction left nothing, and the connection works
            return (await s.execute(select(File.id, File.filename))).all()

    assert run(target, work) == [("file-same", "a.txt")]


def test_storage_quota_holds_against_concurrent_writers(database_url, blobs):
    """Two writers that each fit but not together: one row is added, the other refused, even when
    their transactions overlap (the project's row is locked while the sum is checked)."""
    from codeinterp.store.errors import QuotaExceeded
    from codeinterp.store.projects import get_or_create_project

    async def work(db):
        async with db.session() as s:
            project = await get_or_create_project(s, "quota")
            await s.commit()

        async def add(name: str) -> str:
            async with db.session() as s:
                try:
                    await file_store.add_file_row_within_quota(s, new_id("file"), project.id, name, 60, "assistants",
                                                               quota_bytes=100)
                    await asyncio.sleep(0.2)  # both transactions are open at once
                    await s.commit()
                    return "added"
                except QuotaExceeded as error:
                    assert error.code == "storage_quota_exceeded"
                    return "refused"

        outcomes = await asyncio.gather(add("a.csv"), add("b.csv"))
        assert sorted(outcomes) == ["added", "refused"]
        async with db.session() as s:
            assert await file_store.storage_used(s, project.id) == 60

    run(database_url, work)


def test_a_run_leg_starts_only_a_queued_run(database_url):
    """A job that reaches a run cancelled meanwhile (by another request, or on another replica)
    does not start it again: only a `queued` run becomes `in_progress`."""
    from codeinterp.runs.assistants_steps import START_RUN
    from codeinterp.store.runs import Run

    async def work(db):
        started = {}
        for status in ("queued", "cancelling", "cancelled", "completed"):
            run_id = new_id("run")
            async with db.session() as s:
                s.add(Run(id=run_id, project_id=DEFAULT_PROJECT_ID, thread_id="thread_x", assistant_id="asst_x",
                          status=status, created_at=now(), model="m"))
                await s.commit()
            async with db.transaction() as c:
                row = (await c.execute(START_RUN, {"row_id": run_id, "now": now()})).one_or_none()
            async with db.session() as s:
                started[status] = (row is not None, (await s.get(Run, run_id)).status)
        return started

    assert run(database_url, work) == {"queued": (True, "in_progress"), "cancelling": (False, "cancelling"),
                                       "cancelled": (False, "cancelled"), "completed": (False, "completed")}

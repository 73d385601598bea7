"""The containers service on API containers, with the real bubblewrap backend and a real database:
the code tool the Responses API calls (`executor`), auto containers, files put into a running
session, the memory tier enforced, expiry at access, delete during a running cell."""

import asyncio
import sqlite3
import threading
import time

import pytest

from codeinterp.config import Settings
from codeinterp.runs.containers import Containers
from codeinterp.sandbox import create_backend
from codeinterp.sandbox.types import SandboxError
from codeinterp.store import container_files as cfiles
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.containers import NewFile
from codeinterp.store.db import Database, run_migrations_async
from codeinterp.store.errors import ContainerExpired, NotFound

PROJECT = "proj_service"
CHART = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"


class Service:
    """The service on an event loop of its own thread (as the run worker runs it)."""

    def __init__(self, data_dir, **settings) -> None:
        self.settings = Settings(data_dir=data_dir, sandbox_warm_sessions=2, sandbox_exec_timeout_seconds=60,
                                 sandbox_interrupt_grace_seconds=1, **settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        url = self.settings.resolved_database_url
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await run_migrations_async(url)
        self.db = Database(url)
        await self.db.connect()
        file_store.configure_blobs(self.settings.blob_dir)
        self.sandboxes = create_backend(self.settings)
        await self.sandboxes.start()
        self.containers = Containers(self.db, self.sandboxes, self.settings)
        await self.containers.start()

    def run(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def create(self, memory_limit: str = "1g", file_ids: tuple = (), project_id: str = PROJECT) -> str:
        async def create():
            async with self.db.session() as session:
                row = await container_store.create_container(session, project_id, "test", memory_limit, None,
                                                             list(file_ids), 65536)
            return row.id
        return self.run(create())

    def upload(self, name: str, data: bytes, project_id: str = PROJECT) -> str:
        async def upload():
            file_id, size = await file_store.store_blob(data)
            async with self.db.session() as session:
                await file_store.add_file_row(session, file_id, project_id, name, size, "assistants")
                await session.commit()
            return file_id
        return self.run(upload())

    def execute(self, container_id: str, code: str, project_id: str = PROJECT):
        async def execute():
            executor = await self.containers.executor(project_id, container_id)
            return await executor.execute(code, None, lambda event: None, None)
        return self.run(execute())

    def sql(self, statement: str, *args) -> list:
        with sqlite3.connect(self.settings.data_dir / "codeinterp.db") as db:
            return db.execute(statement, args).fetchall()

    def close(self) -> None:
        self.run(self.containers.close())
        self.run(self.sandboxes.stop())
        self.run(self.db.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("service") / "data")
    yield s
    s.close()


def test_code_runs_in_the_container_session_and_its_outputs_become_assistant_files(service):
    container_id = service.create()
    result, saved, note = service.execute(container_id, "x = 41\nopen('/mnt/data/out.txt', 'w').write('hi')")
    assert result.status == "ok" and note == ""
    assert saved.files == ["out.txt"] and saved.file_ids["out.txt"].startswith("cfile_")
    result, _, _ = service.execute(container_id, "x + 1")
    assert result.text.strip() == "42"  # state persists in the container's session

    result, again, _ = service.execute(container_id, "open('/mnt/data/out.txt', 'w').write('changed')")
    assert again.file_ids["out.txt"] != saved.file_ids["out.txt"]  # the earlier row at that path is replaced
    listed = service.run(service.containers.files(PROJECT, container_id))
    assert listed == [("out.txt", again.file_ids["out.txt"])]
    assert service.sql("SELECT source, bytes FROM container_files WHERE id = ?", again.file_ids["out.txt"]) == [
        ("assistant", 7)]

    result, charted, _ = service.execute(container_id, CHART)
    (image_id,) = charted.images
    assert image_id.startswith("cfile_") and charted.file_ids == {f"{image_id}.png": image_id}
    (path,) = service.sql("SELECT path FROM container_files WHERE id = ?", image_id)[0]
    assert path == f"/mnt/data/{image_id}.png"
    result, _, _ = service.execute(container_id, f"open({path!r}, 'rb').read(4)")
    assert result.text.strip() == repr(b"\x89PNG")


def test_an_auto_container_holds_its_files_at_the_paths_listed(service):
    file_id = service.upload("data.csv", b"a,b\n1,2\n")
    container_id = service.run(service.containers.create_auto(PROJECT, [file_id], None))
    assert service.run(service.containers.usable(PROJECT, container_id))
    ((path, cfile_id),) = service.run(service.containers.files(PROJECT, container_id))
    assert path.endswith("-data.csv") and cfile_id.startswith("cfile_")
    result, _, _ = service.execute(container_id, f"open('/mnt/data/{path}').read()")
    assert result.text.strip() == repr("a,b\n1,2\n")
    with pytest.raises(NotFound):
        service.run(service.containers.create_auto(PROJECT, ["file-unknown"], None))
    assert not service.run(service.containers.usable(PROJECT, "cntr_unknown"))
    assert not service.run(service.containers.usable("proj_other", container_id))
    with pytest.raises(NotFound):
        service.run(service.containers.executor("proj_other", container_id))


def test_a_file_added_to_a_running_session_is_at_its_path_at_once(service):
    container_id = service.create()
    service.execute(container_id, "started = True")
    file_id = service.upload("late.txt", b"late bytes")
    added = service.run(service.containers.add_file(PROJECT, container_id, file_id=file_id))
    result, _, _ = service.execute(container_id, f"open({added['path']!r}, 'rb').read()")
    assert result.text.strip() == repr(b"late bytes")

    name = "cfile_" + "u" * 24
    service.run(asyncio.to_thread(file_store.blob_store().write_bytes, name, b"uploaded"))
    upload = NewFile(cfiles.upload_path("up.txt"), "user", 8, id=name)
    added = service.run(service.containers.add_file(PROJECT, container_id, upload))
    result, _, _ = service.execute(container_id, f"open({added['path']!r}).read()")
    assert result.text.strip() == repr("uploaded")

    service.run(service.containers.delete_file(PROJECT, container_id, name))
    session = service.run(service.containers.executor(PROJECT, container_id)).state.sandbox
    listed = service.run(session.list_files())  # the session itself, before any further cell
    assert added["path"].removeprefix("/mnt/data/") not in [f.path for f in listed]
    assert "late.txt" in " ".join(f.path for f in listed)
    result, _, _ = service.execute(container_id, f"import os; os.path.exists({added['path']!r})")
    assert result.text.strip() == "False"


def test_the_memory_tier_is_enforced_and_a_neighbour_is_unaffected(service):
    small, large = service.create("1g"), service.create("4g")
    allocate = "block = bytearray(1536 * 1024 * 1024)\nlen(block)"
    result, _, _ = service.execute(small, allocate)
    assert result.status in ("crashed", "error"), result
    assert result.status == "crashed" or "MemoryError" in result.text
    result, _, _ = service.execute(large, allocate)
    assert result.status == "ok" and result.text.strip() == str(1536 * 1024 * 1024)
    result, _, _ = service.execute(small, "1 + 1")
    assert "memory limit (1024 MB)" in result.text and result.text.strip().endswith("2")  # restarted, told why


def test_an_expired_container_closes_its_session_and_loses_its_files(service):
    container_id = service.create()
    service.execute(container_id, "open('/mnt/data/kept.txt', 'w').write('x')")
    session_id = service.sql("SELECT session_id FROM containers WHERE id = ?", container_id)[0][0]
    assert service.sandboxes.get(session_id) is not None
    service.sql("UPDATE containers SET last_active_at = last_active_at - 1300 WHERE id = ?", container_id)
    with pytest.raises(ContainerExpired):
        service.run(service.containers.executor(PROJECT, container_id))
    assert service.sandboxes.get(session_id) is None
    assert service.sql("SELECT count(*) FROM container_files WHERE container_id = ?", container_id) == [(0,)]
    assert service.run(service.containers.files(PROJECT, container_id)) == []
    assert not service.run(service.containers.usable(PROJECT, container_id))


def test_delete_during_a_running_cell_interrupts_it_and_leaves_a_neighbour_alone(service):
    doomed, neighbour = service.create(), service.create()
    service.execute(neighbour, "y = 7")
    started = threading.Event()

    async def run_long():
        executor = await service.containers.executor(PROJECT, doomed)
        return await executor.execute("print('started', flush=True)\nimport time\ntime.sleep(600)", None,
                                      lambda event: started.set(), None)

    cell = asyncio.run_coroutine_threadsafe(run_long(), service.loop)
    assert started.wait(60)
    session_id = service.sql("SELECT session_id FROM containers WHERE id = ?", doomed)[0][0]
    service.run(service.containers.delete(PROJECT, doomed))
    try:
        result, _, _ = cell.result(60)
        assert result.status == "error" and "KeyboardInterrupt" in result.text  # interrupted before the close
    except SandboxError:  # or ended by the close
        pass
    assert service.sandboxes.get(session_id) is None
    with pytest.raises(NotFound):
        service.run(service.containers.executor(PROJECT, doomed))
    assert service.sql("SELECT count(*) FROM containers WHERE id = ?", doomed) == [(0,)]
    result, _, _ = service.execute(neighbour, "y")
    assert result.text.strip() == "7"


def test_the_executor_may_be_awaited_from_another_event_loop(service):
    container_id = service.create()
    seen = []

    async def from_here():
        executor = await service.containers.executor(PROJECT, container_id)
        assert asyncio.get_running_loop() is not service.loop
        return await executor.execute("print('out')", None, seen.append, time.time() + 60)

    result, _, _ = asyncio.run(from_here())
    assert result.text == "out\n" and "".join(e.text for e in seen) == "out\n"


def test_api_and_thread_containers_share_the_projects_session_cap(tmp_path):
    from codeinterp.runs.code_executor import ThreadCodeExecutor

    capped = Service(tmp_path / "data", project_max_sessions=1)
    try:
        container_id = capped.create()
        capped.execute(container_id, "x = 1")

        async def thread_code():
            ts = capped.containers.get(PROJECT, "thread_capped")
            return await ThreadCodeExecutor(capped.containers, ts).execute("2 + 2", None, lambda event: None, None)

        result, _, _ = capped.run(thread_code())
        assert result.text.strip() == "4"  # the API container's idle session was closed to make room
        result, _, note = capped.execute(container_id, "x")
        assert "earlier session ended" in note and "NameError" in result.text
        assert capped.sql("SELECT count(*) FROM session_usage WHERE project_id = ?", PROJECT) == [(3,)]
    finally:
        capped.close()

"""A thread's code session is a stored container: a row that says which sandbox session is its
own and when it was last active, and a row per file it holds, through a real server."""

import io
import sqlite3

from tests.test_runs import ask, make_assistant, python

server_env = {"CODEINTERP_SANDBOX_IDLE_EXPIRY_SECONDS": "150"}


def rows(server, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        return db.execute(sql, args).fetchall()


def test_a_threads_container_holds_its_session_and_files_and_goes_with_the_thread(client, other_client, server,
                                                                                 upstream):
    data = client.files.create(file=("input.csv", io.BytesIO(b"a,b\n1,2\n")), purpose="assistants")
    assistant = make_assistant(client, tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    upstream.script([python("open('/mnt/data/out.txt', 'w').write('hi')"), {"text": "done"}])
    thread, run = ask(client, assistant, "Write it")
    assert run.status == "completed"

    [(container_id, project_id, status, minutes, session_id, last_active_at, created_at)] = rows(
        server, "SELECT id, project_id, status, expires_after_minutes, session_id, last_active_at, created_at "
                "FROM containers WHERE thread_id = ?", thread.id)
    assert container_id.startswith("cntr_") and status == "running"
    assert minutes == 3  # CODEINTERP_SANDBOX_IDLE_EXPIRY_SECONDS=150, in whole minutes
    assert session_id and last_active_at >= created_at
    output = next(f for f in client.files.list(purpose="assistants_output").data if f.filename.endswith("out.txt"))
    files = rows(server, "SELECT id, path, source, bytes, file_id FROM container_files WHERE container_id = ? "
                         "ORDER BY source DESC", container_id)
    assert [(path, source, size, file_id) for _, path, source, size, file_id in files] == [
        ("/mnt/data/input.csv", "user", 8, data.id), ("/mnt/data/out.txt", "assistant", 2, output.id)]
    assert all(file_row_id.startswith("cfile_") for file_row_id, *_ in files)

    # another project's thread gets a container of its own
    other = make_assistant(other_client)
    upstream.script([python("1+1"), {"text": "two"}])
    other_thread, other_run = ask(other_client, other, "Add")
    assert other_run.status == "completed"
    [(other_container, other_project)] = rows(server, "SELECT id, project_id FROM containers WHERE thread_id = ?",
                                              other_thread.id)
    assert other_container != container_id and other_project != project_id

    client.beta.threads.delete(thread.id)
    assert rows(server, "SELECT id FROM containers WHERE id = ?", container_id) == []
    assert rows(server, "SELECT id FROM container_files WHERE container_id = ?", container_id) == []
    assert rows(server, "SELECT id FROM containers WHERE id = ?", other_container) != []

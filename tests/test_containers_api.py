"""/v1/containers through the official SDK (strict response validation) against the real server:
create, retrieve, list, delete, expiry decided when read, and the errors of the contract."""

import io
import sqlite3
import time

import openai
import pytest

server_env = {"CODEINTERP_CONTAINER_MAX_MEMORY": "4g"}


def db_rows(server, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        return db.execute(sql, args).fetchall()


def test_create_retrieve_list_and_delete(client):
    made = client.containers.create(name="analysis")
    assert made.id.startswith("cntr_") and made.object == "container" and made.status == "running"
    assert made.memory_limit == "1g"
    assert (made.expires_after.anchor, made.expires_after.minutes) == ("last_active_at", 20)
    assert made.last_active_at >= made.created_at
    assert made.network_policy.type == "disabled"
    assert client.containers.retrieve(made.id).name == "analysis"
    other = client.containers.create(name="other", memory_limit="4g",
                                     expires_after={"anchor": "last_active_at", "minutes": 5})
    assert (other.memory_limit, other.expires_after.minutes) == ("4g", 5)

    listed = [c.id for c in client.containers.list()]
    assert listed.index(other.id) < listed.index(made.id)  # newest first
    assert [c.id for c in client.containers.list(name="analysis")] == [made.id]
    ascending = [c.id for c in client.containers.list(order="asc")]
    assert ascending.index(made.id) < ascending.index(other.id)
    page = client.containers.list(limit=1, order="asc", after=made.id)
    assert [c.id for c in page.data] == [other.id]

    client.containers.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.delete(made.id)
    assert made.id not in [c.id for c in client.containers.list()]


def test_file_ids_are_copied_in_as_user_files(client, server):
    data = client.files.create(file=("data.csv", io.BytesIO(b"a,b\n1,2\n")), purpose="assistants")
    made = client.containers.create(name="with files", file_ids=[data.id])
    rows = db_rows(server, "SELECT id, path, source, bytes, file_id FROM container_files WHERE container_id = ?",
                   made.id)
    assert len(rows) == 1
    file_row_id, path, source, size, file_id = rows[0]
    assert file_row_id.startswith("cfile_") and source == "user" and size == 8 and file_id == data.id
    assert path.startswith("/mnt/data/") and path.endswith("data.csv")
    (listed,) = client.containers.files.list(made.id).data
    assert (listed.id, listed.path, listed.source, listed.bytes) == (file_row_id, path, "user", 8)
    assert client.containers.files.content.retrieve(listed.id, container_id=made.id).content == b"a,b\n1,2\n"


def test_a_container_expires_when_read_after_its_minutes_and_keeps_its_metadata(client, server):
    made = client.containers.create(name="short", expires_after={"anchor": "last_active_at", "minutes": 1})
    data = client.files.create(file=("x.txt", io.BytesIO(b"x")), purpose="assistants")
    kept = client.containers.create(name="kept", file_ids=[data.id])
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:  # a minute and a bit has passed
        db.execute("UPDATE containers SET last_active_at = last_active_at - 61 WHERE id = ?", (made.id,))
    listed = {c.id: c.status for c in client.containers.list()}
    assert listed[made.id] == "expired" and listed[kept.id] == "running"
    again = client.containers.retrieve(made.id)
    assert again.status == "expired" and again.name == "short"
    assert db_rows(server, "SELECT count(*) FROM container_files WHERE container_id = ?", kept.id) == [(1,)]


def test_reading_a_container_refreshes_last_active_at_and_listing_does_not(client, server):
    made = client.containers.create(name="touched")
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        db.execute("UPDATE containers SET last_active_at = last_active_at - 30 WHERE id = ?", (made.id,))
    before = db_rows(server, "SELECT last_active_at FROM containers WHERE id = ?", made.id)[0][0]
    client.containers.list()
    assert db_rows(server, "SELECT last_active_at FROM containers WHERE id = ?", made.id)[0][0] == before
    assert client.containers.retrieve(made.id).last_active_at >= int(time.time()) - 2 > before


@pytest.mark.parametrize("body, param", [
    ({}, "name"),
    ({"name": "x", "memory_limit": "2g"}, "memory_limit"),
    ({"name": "x", "memory_limit": "16g"}, "memory_limit"),  # above CODEINTERP_CONTAINER_MAX_MEMORY
    ({"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}}, "expires_after.anchor"),
    ({"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}}, "expires_after.minutes"),
    ({"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": ["pypi.org"]}}, "network_policy.type"),
    ({"name": "x", "skills": [{"type": "skill_reference", "skill_id": "s_1"}]}, "skills"),
])
def test_bad_requests_name_the_field(client, body, param):
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/containers", body=body, cast_to=object)
    assert caught.value.body["param"] == param, caught.value.body


def test_unknown_files_and_other_projects_containers_are_404(client, other_client):
    with pytest.raises(openai.NotFoundError):
        client.containers.create(name="x", file_ids=["file-doesnotexist0000000000"])
    theirs = other_client.containers.create(name="theirs")
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(theirs.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.delete(theirs.id)
    assert theirs.id not in [c.id for c in client.containers.list()]
    assert other_client.containers.retrieve(theirs.id).status == "running"

"""/v1/containers/{id}/files through the official SDK (strict response validation) against the real
server: uploads (multipart and by file_id) byte-exact through /content, pages, delete, expiry and
the errors of the contract."""

import io
import sqlite3

import httpx
import openai
import pytest

MAX_UPLOAD = 64 * 1024
server_env = {"CODEINTERP_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}


def expire(server, container_id: str) -> None:
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        db.execute("UPDATE containers SET last_active_at = last_active_at - 3600 WHERE id = ?", (container_id,))


def test_both_uploads_are_kept_byte_exact_at_their_own_paths(client):
    container = client.containers.create(name="files")
    data = bytes(range(256)) * 100 + b"\x00end"
    uploaded = client.containers.files.create(container.id, file=("data.csv", io.BytesIO(data)))
    assert uploaded.id.startswith("cfile_") and uploaded.object == "container.file"
    assert (uploaded.container_id, uploaded.bytes, uploaded.source) == (container.id, len(data), "user")
    assert uploaded.path.startswith("/mnt/data/") and uploaded.path.endswith("-data.csv")

    again = client.containers.files.create(container.id, file=("data.csv", io.BytesIO(b"other")))
    assert again.path != uploaded.path and again.path.endswith("-data.csv")  # no upload overwrites another

    source = client.files.create(file=("notes.txt", io.BytesIO(b"by id\n")), purpose="assistants")
    copied = client.containers.files.create(container.id, file_id=source.id)
    assert (copied.bytes, copied.source) == (6, "user") and copied.path.endswith("-notes.txt")

    assert client.containers.files.content.retrieve(uploaded.id, container_id=container.id).content == data
    assert client.containers.files.content.retrieve(again.id, container_id=container.id).content == b"other"
    content = client.containers.files.content.retrieve(copied.id, container_id=container.id)
    assert content.content == b"by id\n"
    assert content.response.headers["content-type"].startswith("text/plain")
    assert 'filename="' in content.response.headers["content-disposition"]
    assert content.response.headers["content-disposition"].startswith("attachment")

    got = client.containers.files.retrieve(copied.id, container_id=container.id)
    assert got.model_dump() == copied.model_dump()


def test_list_pages_and_delete(client):
    container = client.containers.create(name="pages")
    made = [client.containers.files.create(container.id, file=(f"f{n}.txt", io.BytesIO(b"%d" % n))).id
            for n in range(5)]
    listed = client.containers.files.list(container.id)
    assert [f.id for f in listed.data] == made[::-1]  # newest first
    first = client.containers.files.list(container.id, limit=2, order="asc")
    assert [f.id for f in first.data] == made[:2] and first.has_more
    rest = client.containers.files.list(container.id, limit=10, order="asc", after=first.data[-1].id)
    assert [f.id for f in rest.data] == made[2:] and not rest.has_more
    assert [f.id for f in client.containers.files.list(container.id, limit=2).iter_pages().__next__().data] == \
        made[::-1][:2]
    assert [f.id for f in client.containers.files.list(container.id, limit=2)] == made[::-1]  # auto-paging

    client.containers.files.delete(made[0], container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(made[0], container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.content.retrieve(made[0], container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.delete(made[0], container_id=container.id)
    assert made[0] not in [f.id for f in client.containers.files.list(container.id)]


def test_adding_and_deleting_files_refreshes_last_active_at(client, server):
    container = client.containers.create(name="touched")
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        db.execute("UPDATE containers SET last_active_at = last_active_at - 300 WHERE id = ?", (container.id,))
    before = client.containers.list(name="touched").data[0].last_active_at
    made = client.containers.files.create(container.id, file=("a.txt", io.BytesIO(b"a")))
    after_add = client.containers.list(name="touched").data[0].last_active_at
    assert after_add >= before + 300 - 5
    with sqlite3.connect(server.data_dir / "codeinterp.db") as db:
        db.execute("UPDATE containers SET last_active_at = last_active_at - 300 WHERE id = ?", (container.id,))
    client.containers.files.delete(made.id, container_id=container.id)
    assert client.containers.list(name="touched").data[0].last_active_at >= after_add - 5


def test_an_expired_containers_files_are_gone(client, server):
    container = client.containers.create(name="expiring")
    made = client.containers.files.create(container.id, file=("x.txt", io.BytesIO(b"x")))
    expire(server, container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(made.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.content.retrieve(made.id, container_id=container.id)
    assert client.containers.files.list(container.id).data == []
    assert client.containers.retrieve(container.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as caught:
        client.containers.files.create(container.id, file=("y.txt", io.BytesIO(b"y")))
    assert caught.value.code == "container_expired"


def test_a_deleted_containers_files_are_404(client):
    container = client.containers.create(name="deleted")
    made = client.containers.files.create(container.id, file=("x.txt", io.BytesIO(b"x")))
    client.containers.delete(container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(made.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.list(container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.create(container.id, file=("y.txt", io.BytesIO(b"y")))


def test_other_projects_unknown_ids_and_bad_bodies(client, other_client):
    theirs = other_client.containers.create(name="theirs")
    their_file = other_client.containers.files.create(theirs.id, file=("t.txt", io.BytesIO(b"t")))
    calls = [
        lambda: client.containers.files.list(theirs.id),
        lambda: client.containers.files.retrieve(their_file.id, container_id=theirs.id),
        lambda: client.containers.files.content.retrieve(their_file.id, container_id=theirs.id),
        lambda: client.containers.files.delete(their_file.id, container_id=theirs.id),
        lambda: client.containers.files.create(theirs.id, file=("m.txt", io.BytesIO(b"m"))),
        lambda: client.containers.files.list("cntr_unknown"),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    mine = client.containers.create(name="mine")
    with pytest.raises(openai.NotFoundError):  # another project's file, as its own file id
        client.containers.files.retrieve(their_file.id, container_id=mine.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.containers.files.create(mine.id, file_id="file-unknown000000000000000")
    assert caught.value.body["type"] == "invalid_request_error"
    their_upload = other_client.files.create(file=("o.txt", io.BytesIO(b"o")), purpose="assistants")
    with pytest.raises(openai.NotFoundError):
        client.containers.files.create(mine.id, file_id=their_upload.id)
    for body in ({}, {"file_id": 5}, {"file_id": "x", "extra": 1}):
        with pytest.raises(openai.BadRequestError):
            client.post(f"/containers/{mine.id}/files", body=body, cast_to=object)
    assert other_client.containers.files.retrieve(their_file.id, container_id=theirs.id).bytes == 1


def test_an_upload_over_the_limit_is_413(client, server):
    container = client.containers.create(name="big")
    with pytest.raises(openai.APIStatusError) as caught:
        client.containers.files.create(container.id, file=("big.bin", io.BytesIO(b"x" * (MAX_UPLOAD + 1))))
    assert caught.value.status_code == 413 and caught.value.body["param"] == "file"
    # sent in chunks with no Content-Length: stopped as it arrives
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n"
        for _ in range(4):
            yield b"x" * MAX_UPLOAD
        yield b"\r\n--b--\r\n"
    r = httpx.post(f"{server.base_url}/containers/{container.id}/files", content=chunks(),
                   headers={"Authorization": f"Bearer {server.api_key}",
                            "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert client.containers.files.list(container.id).data == []


def test_container_files_outlive_a_restart(client, server):
    """(Last in the module: it restarts the server.) The start's sweep of orphan blobs keeps the
    blobs of container files."""
    container = client.containers.create(name="kept")
    made = client.containers.files.create(container.id, file=("k.bin", io.BytesIO(b"\x01kept")))
    server.restart()
    assert client.containers.files.content.retrieve(made.id, container_id=container.id).content == b"\x01kept"
    assert client.containers.retrieve(container.id).status == "running"

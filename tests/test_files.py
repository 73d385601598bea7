"""The Files API through the official openai SDK against a real server process."""

import base64
import io

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.helpers.postgres import server_on_postgres
from tests.helpers.server import start_server


def upload(client, name="data.csv", data=b"a,b\n1,2\n", purpose="assistants"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_create_retrieve_content_delete(client):
    created = upload(client, "sales.csv", b"region,total\nnorth,10\n")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(b"region,total\nnorth,10\n")
    assert created.filename == "sales.csv"
    assert created.purpose == "assistants"
    assert created.status == "processed"
    assert created.created_at > 1_600_000_000

    got = client.files.retrieve(created.id)
    assert got == created

    content = client.files.content(created.id)
    assert content.read() == b"region,total\nnorth,10\n"
    assert content.response.headers["content-type"].startswith("text/csv")

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(created.id)
    assert err.value.body["message"] == f"No file found with id '{created.id}'."
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_list_filters_by_purpose_and_pages_with_after(server):
    with make_client(server, server.create_key("paging")) as client:
        ids = [upload(client, f"f{n}.txt", b"x" * n, purpose="assistants" if n % 2 else "user_data").id
               for n in range(7)]
        listed = client.files.list()
        assert [f.id for f in listed.data] == ids[::-1]  # newest first by default
        assert listed.has_more is False

        first = client.files.list(limit=3, order="asc")
        assert [f.id for f in first.data] == ids[:3]
        assert first.has_more is True
        pages = [f.id for f in client.files.list(limit=3, order="asc")]  # the SDK follows `after`
        assert pages == ids
        second = client.files.list(limit=3, order="asc", after=first.data[-1].id)
        assert [f.id for f in second.data] == ids[3:6]

        assert [f.id for f in client.files.list(purpose="user_data", order="asc")] == ids[0::2]
        assert [f.id for f in client.files.list(purpose="assistants", order="asc")] == ids[1::2]


def test_list_limit_out_of_range_is_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(limit=0)
    assert err.value.body["param"] == "limit"


def test_missing_and_wrong_key_are_401(server):
    for key in ("sk-ci-wrong", None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = httpx.get(server.base_url + "/files", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    with make_client(server, "sk-ci-wrong") as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.files.list()


def test_basic_auth_with_key_as_password(server, client):
    created = upload(client, "basic.txt", b"basic")
    auth = "Basic " + base64.b64encode(f":{server.api_key}".encode()).decode()
    r = httpx.get(f"{server.base_url}/files/{created.id}/content", headers={"Authorization": auth})
    assert r.status_code == 200 and r.content == b"basic"
    r = httpx.get(f"{server.base_url}/files", auth=("", "sk-ci-nope"))
    assert r.status_code == 401


def test_other_projects_files_answer_404(client, other_client):
    mine = upload(client, "mine.txt", b"secret")
    for call in (other_client.files.retrieve, other_client.files.content, other_client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(mine.id)
    assert mine.id not in [f.id for f in other_client.files.list()]
    assert client.files.content(mine.id).read() == b"secret"


def test_revoked_key_is_refused(server):
    key = server.create_key("revoked")
    with make_client(server, key) as c:
        c.files.list()
        listing = server.run_cli("keys", "list").stdout
        key_id = next(line.split()[0] for line in listing.splitlines() if key[:12] in line)
        server.run_cli("keys", "revoke", key_id)
        with pytest.raises(openai.AuthenticationError):
            c.files.list()


def test_unsupported_extension_for_assistants_is_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, "program.exe", b"MZ")
    assert err.value.body["param"] == "file"
    assert "csv" in err.value.body["message"] and "xlsx" in err.value.body["message"]
    # other purposes take any file
    assert upload(client, "program.exe", b"MZ", purpose="user_data").filename == "program.exe"


def test_malformed_bodies_are_400(server, client):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    r = httpx.post(server.base_url + "/files", headers=headers, json={"purpose": "assistants"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(server.base_url + "/files", headers=headers, files={"file": ("a.txt", b"x")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = httpx.post(server.base_url + "/files", headers=headers, data={"purpose": "assistants"},
                   files={"other": ("a.txt", b"x")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = httpx.post(server.base_url + "/files", headers=headers, data={"purpose": "nonsense"},
                   files={"file": ("a.txt", b"x")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = httpx.post(server.base_url + "/files", headers={**headers, "Content-Type": "multipart/form-data; boundary=zz"},
                   content=b"--zz\r\nbroken")
    assert r.status_code == 400
    r = httpx.post(server.base_url + "/files", headers={**headers, "Content-Type": "multipart/form-data; boundary=zz"},
                   content=b"--zz\r\n[None, None]--zz--\r\n" + b"x" * 300_000)
    assert r.status_code == 400 and "multipart" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.txt", b"x"), purpose="nonsense")  # type: ignore[arg-type]
    # The contract's file object has no "evals" purpose, so such an upload is refused clearly.
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", b"{}"), purpose="evals")
    assert err.value.body["param"] == "purpose" and "evals" in err.value.body["message"]
    assert server.proc.poll() is None


def test_errors_and_headers_follow_openai_conventions(server):
    headers = {"Authorization": f"Bearer {server.api_key}", "OpenAI-Beta": "assistants=v2"}
    r = httpx.get(server.base_url + "/no-such-route", headers=headers)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert r.headers["x-request-id"]
    r = httpx.put(server.base_url + "/files", headers=headers)
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    for url in ("/files/file-%00abc", "/files?after=%00", "/files/file-x/content?x=%00"):
        r = httpx.get(server.base_url + url, headers=headers)
        assert r.status_code == 400 and "NUL" in r.json()["error"]["message"] and r.headers["x-request-id"]
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"} and r.headers["x-request-id"]
    r = httpx.get(server.base_url + "/files", headers=headers)
    assert r.status_code == 200 and r.headers["x-request-id"].startswith("req_")


def test_upload_over_the_limit_is_413_and_leaves_nothing(tmp_path):
    proc = start_server(tmp_path, env={"CODEINTERP_MAX_UPLOAD_BYTES": "100000"})
    try:
        with make_client(proc) as client:
            with pytest.raises(openai.APIStatusError) as err:
                upload(client, "big.csv", b"x" * 100_001)
            assert err.value.status_code == 413
            assert err.value.body["type"] == "invalid_request_error"
            # a body without Content-Length is cut off while streaming
            headers = {"Authorization": f"Bearer {proc.api_key}",
                       "Content-Type": "multipart/form-data; boundary=BOUNDARY"}

            def chunked():
                yield (b'--BOUNDARY\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
                       b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n')
                for _ in range(30):
                    yield b"y" * 10_000
                yield b"\r\n--BOUNDARY--\r\n"

            r = httpx.post(proc.base_url + "/files", headers=headers, content=chunked())
            assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
            exact = upload(client, "exact.csv", b"z" * 100_000)
            assert client.files.content(exact.id).read() == b"z" * 100_000
            assert [f.id for f in client.files.list()] == [exact.id]
        blobs = proc.data_dir / "blobs"
        assert sorted(p.name for p in blobs.iterdir() if p.is_file()) == [exact.id]
        assert list((blobs / "tmp").iterdir()) == []
    finally:
        proc.stop()


def test_restart_keeps_files(tmp_path):
    proc = start_server(tmp_path)
    try:
        with make_client(proc) as client:
            created = upload(client, "keep.json", b'{"k": 1}')
        proc.restart()
        with make_client(proc) as client:
            assert client.files.retrieve(created.id).filename == "keep.json"
            assert client.files.content(created.id).read() == b'{"k": 1}'
    finally:
        proc.stop()


@pytest.mark.postgres
def test_files_api_on_postgresql(tmp_path):
    with server_on_postgres(tmp_path) as proc:
        with make_client(proc) as client:
            ids = [upload(client, f"p{n}.py", f"print({n})".encode()).id for n in range(3)]
            assert [f.id for f in client.files.list(limit=2, order="asc")] == ids
            assert client.files.content(ids[1]).read() == b"print(1)"
            client.files.delete(ids[0])
            proc.restart()
            assert [f.id for f in client.files.list(order="asc")] == ids[1:]


def test_expires_after_sets_expires_at(client):
    created = client.files.create(file=("soon.txt", b"soon"), purpose="user_data",
                                  expires_after={"anchor": "created_at", "seconds": 3600})
    assert created.expires_at == created.created_at + 3600 or created.expires_at == created.created_at + 3601
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("soon.txt", b"soon"), purpose="user_data",
                            expires_after={"anchor": "created_at", "seconds": 5})
    assert err.value.body["param"] == "expires_after"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_async_client_uploads_and_downloads(async_client):
    async with async_client:
        created = await async_client.files.create(file=("async.md", b"# hi"), purpose="assistants")
        assert (await async_client.files.content(created.id)).read() == b"# hi"
        assert created.id in [f.id async for f in async_client.files.list()]

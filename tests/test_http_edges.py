"""HTTP edges of the API: a body refused by its Content-Length before it is sent, a client that
goes away mid-upload, Basic auth variants, and list pages bounded by both `after` and `before`."""

import base64
import json
import socket

import httpx
import pytest

from tests.test_runs import wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
JSON_LIMIT = 32 * 1024 * 1024


def raw_request(server, head: str, body: bytes = b"") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return conn


def read_reply(conn: socket.socket) -> tuple[str, str]:
    """The status line and headers, and the body (by its Content-Length)."""
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += conn.recv(65536) or b"\r\n\r\n"
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode(), body.decode()


def test_a_json_body_announced_too_large_is_refused_before_it_is_sent(server):
    conn = raw_request(server, f"POST /v1/threads HTTP/1.1\nHost: x\nAuthorization: Bearer {server.api_key}\n"
                               f"Content-Type: application/json\nContent-Length: {JSON_LIMIT + 1}\n")
    with conn:  # not one byte of the body is sent
        head, body = read_reply(conn)
    assert head.startswith("HTTP/1.1 413 "), head
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_a_client_that_disconnects_mid_upload_leaves_nothing(server, client):
    before = {f.id for f in client.files.list()}
    preamble = (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
                b'--B\r\nContent-Disposition: form-data; name="file"; filename="half.csv"\r\n\r\n')
    conn = raw_request(server, f"POST /v1/files HTTP/1.1\nHost: x\nAuthorization: Bearer {server.api_key}\n"
                               f"Content-Type: multipart/form-data; boundary=B\nContent-Length: {10_000_000}\n",
                       preamble + b"h" * 2_000_000)
    temporary = server.data_dir / "blobs" / "tmp"
    wait_for(lambda: any(p.stat().st_size > 0 for p in temporary.iterdir()), timeout=60)  # mid-upload
    conn.close()
    wait_for(lambda: not list(temporary.iterdir()), timeout=60)
    assert {f.id for f in client.files.list()} == before
    assert client.files.create(file=("after.txt", b"after"), purpose="assistants").bytes == 5


def basic(value: str) -> dict:
    return {"Authorization": "Basic " + value}


def encoded(user_and_password: str) -> str:
    return base64.b64encode(user_and_password.encode()).decode()


@pytest.mark.parametrize("header, status", [
    (lambda key: basic(encoded(f":{key}")), 200),  # curl -u :KEY
    (lambda key: basic(encoded(f"{key}:")), 200),  # curl -u KEY: (the key as user name)
    (lambda key: basic(encoded(f"{key}")), 200),  # no colon at all
    (lambda key: basic(encoded(f"someone:{key}")), 200),
    (lambda key: basic(encoded(f"{key}:wrong")), 401),  # a password given is the key
    (lambda key: basic(encoded(":")), 401),
    (lambda key: basic("not base64!"), 401),
    (lambda key: basic(encoded(f":{key}")[:-2]), 401),  # cut: bad padding
    (lambda key: basic(base64.b64encode(b":\xff\xfe").decode()), 401),  # not UTF-8
    (lambda key: {"Authorization": "Basic"}, 401),
], ids=["key-as-password", "key-as-user", "key-alone", "user-and-key", "key-then-wrong-password", "empty-pair",
        "not-base64", "bad-padding", "not-utf8", "scheme-only"])
def test_basic_auth(server, header, status):
    r = httpx.get(f"{server.base_url}/files", headers=header(server.api_key))
    assert r.status_code == status, r.text
    if status == 401:
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_after_and_before_together_bound_a_page(client):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": str(n)} for n in range(6)])
    ids = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc").data]
    page = client.beta.threads.messages.list(thread.id, order="asc", after=ids[0], before=ids[5])
    assert [m.id for m in page.data] == ids[1:5] and page.has_more is False
    page = client.beta.threads.messages.list(thread.id, order="desc", after=ids[5], before=ids[0], limit=2)
    assert [m.id for m in page.data] == [ids[4], ids[3]] and page.has_more is True
    assert (page.first_id, page.last_id) == (ids[4], ids[3])
    assert client.beta.threads.messages.list(thread.id, order="asc", after=ids[3], before=ids[2]).data == []

    assistants = [client.beta.assistants.create(model="scripted-model", name=str(n)).id for n in range(4)]
    page = client.beta.assistants.list(order="asc", after=assistants[0], before=assistants[3])
    assert [a.id for a in page.data] == assistants[1:3]

"""Requests generated from the contract for /files (Schemathesis): never a server error, always
OpenAI's error shape when refused, and replies that match the contract's schemas."""

import pytest
import schemathesis
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from hypothesis import HealthCheck, settings

from tests.conftest import CONTRACT
from tests.helpers.postgres import server_on_postgres
from tests.helpers.server import UNPARSEABLE, start_server

schema = schemathesis.openapi.from_path(CONTRACT).include(path_regex=r"^/files")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    """This module's server, once on SQLite and once on PostgreSQL (which refuses NUL bytes, long keys...)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        proc = start_server(tmp)
        yield proc
        proc.stop()
        return
    with server_on_postgres(tmp) as proc:
        yield proc


@pytest.fixture(scope="module", autouse=True)
def one_file(client):
    """The list is never empty, so `first_id` and `last_id` are ids, as the contract's schema says."""
    client.files.create(file=("seed.txt", b"seed"), purpose="assistants")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_files_requests(case, server):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {server.api_key}"}
    # The contract documents only the 200 replies, so statuses are checked here, not by Schemathesis.
    response = case.call(base_url=server.base_url)
    if response.status_code == 400 and response.text == UNPARSEABLE:
        return  # not HTTP (a raw space, control or non-ASCII byte in the request line): refused before the application
    checks = [not_a_server_error, content_type_conformance]
    if not _empty_list(response):  # an empty page has null first_id/last_id, as OpenAI answers
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)
    assert response.status_code in (200, 400, 404, 405, 413), response.text  # 405: other methods are tried too
    assert response.status_code < 500
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}


def _empty_list(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("object") == "list" and body.get("data") == []

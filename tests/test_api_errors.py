"""OpenAI error objects for every kind of failure, checked on the application in-process."""

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel

from codeinterp.api.app import create_app
from codeinterp.api.auth import current_project
from codeinterp.api.errors import APIError
from codeinterp.config import Settings
from codeinterp.store.errors import InvalidRequest, NotFound, QuotaExceeded

KEY = "sk-ci-errors-test"


class Body(BaseModel):
    name: str
    count: int = 0


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("data"), api_key=KEY, sandbox_warm_sessions=2))

    @app.post("/v1/echo")
    async def echo(body: Body, project_id: str = Depends(current_project)) -> dict:
        return {"project": project_id, **body.model_dump()}

    @app.get("/v1/raise/{kind}")
    async def raise_(kind: str) -> dict:
        if kind == "invalid":
            raise InvalidRequest("Bad thing.", param="thing")
        if kind == "missing":
            raise NotFound("widget", "w_1")
        if kind == "quota":
            raise QuotaExceeded(10 * 1024 * 1024)
        if kind == "api":
            raise APIError(429, "Slow down.", type="rate_limit_error", code="rate_limit_exceeded")
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}) as client:
        yield client


def error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["x-request-id"].startswith("req_")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_valid_request_passes(http):
    r = http.post("/v1/echo", json={"name": "x", "count": 2})
    assert r.status_code == 200 and r.json() == {"project": "proj_default", "name": "x", "count": 2}


def test_malformed_json_is_400(http):
    e = error(http.post("/v1/echo", content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    assert e["type"] == "invalid_request_error" and "JSON" in e["message"]


def test_missing_wrong_type_and_non_object_bodies_are_400_naming_the_param(http):
    e = error(http.post("/v1/echo", json={"count": 1}), 400)
    assert e["param"] == "name" and e["code"] == "missing_required_parameter"
    e = error(http.post("/v1/echo", json={"name": "x", "count": "many"}), 400)
    assert e["param"] == "count" and "count" in e["message"]
    e = error(http.post("/v1/echo", json=[1, 2]), 400)
    assert e["type"] == "invalid_request_error"
    error(http.post("/v1/echo"), 400)


def test_service_errors_map_to_statuses(http):
    assert error(http.get("/v1/raise/invalid"), 400)["param"] == "thing"
    assert error(http.get("/v1/raise/missing"), 404)["message"] == "No widget found with id 'w_1'."
    quota = error(http.get("/v1/raise/quota"), 403)
    assert quota["code"] == "storage_quota_exceeded" and "10 MB" in quota["message"]
    assert error(http.get("/v1/raise/api"), 429)["type"] == "rate_limit_error"


def test_a_bug_is_a_500_server_error_with_a_request_id(http):
    e = error(http.get("/v1/raise/bug"), 500)
    assert e["type"] == "server_error" and "a bug" not in e["message"]


def test_routes_methods_and_auth(http):
    assert error(http.get("/v1/nothing-here"), 404)["message"] == "Invalid URL (GET /v1/nothing-here)"
    error(http.delete("/v1/echo"), 405)
    e = error(http.post("/v1/echo", json={"name": "x"}, headers={"Authorization": "Bearer nope"}), 401)
    assert e["code"] == "invalid_api_key"


@pytest.mark.postgres
def test_a_value_the_database_refuses_is_400_not_500(tmp_path):
    """PostgreSQL refuses NUL characters in text; that is the client's input, not a server bug."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from codeinterp.api.deps import db_session
    from codeinterp.store.projects import Project
    from tests.helpers.postgres import postgres_database

    with postgres_database() as database_url:
        app = create_app(Settings(data_dir=tmp_path, database_url=database_url, api_key=KEY,
                                  sandbox_warm_sessions=2))

        @app.post("/v1/projects")
        async def create(body: Body, session: AsyncSession = Depends(db_session)) -> dict:
            session.add(Project(id="proj_" + body.name[:8], name=body.name, created_at=0))
            await session.flush()
            return {"ok": True}

        with TestClient(app, raise_server_exceptions=False) as http:
            assert http.post("/v1/projects", json={"name": "fine"}).status_code == 200
            e = error(http.post("/v1/projects", json={"name": "bad\u0000name"}), 400)
            assert "NUL" in e["message"]

"""Shared fixtures: a real server process and official `openai` SDK clients talking to it."""

import os
import shutil
import tempfile
from pathlib import Path

import httpx
import hypothesis.configuration
import openai
import pytest
import yaml

from tests.helpers.postgres import postgres_database
from tests.helpers.server import ServerProcess, start_server
from tests.helpers.upstream import upstream  # noqa: F401  (session-scoped scripted model)

# The paths we serve and the schemas they use, cut from OpenAI's public OpenAPI description (MIT).
CONTRACT = Path(__file__).resolve().parent / "contract" / "openapi-subset.yaml"


SCRATCH = pytest.StashKey[str]()


def pytest_configure(config) -> None:
    """Tools that write beside the working directory (Schemathesis's .schemathesis/, Hypothesis's
    .hypothesis/) write into a temporary directory, never into the repository (test arguments
    are resolved from where pytest was started)."""
    scratch = tempfile.mkdtemp(prefix="codeinterp-tests-")
    os.chdir(scratch)
    hypothesis.configuration.set_hypothesis_home_dir(Path(scratch) / ".hypothesis")  # read at its import
    config.stash[SCRATCH] = scratch
    # CI draws the same examples every run (a failure there can be run again as it was); a developer's
    # runs draw new ones, and so keep exploring.
    hypothesis.settings.register_profile("ci", derandomize=True)
    if os.environ.get("CI") == "true":
        hypothesis.settings.load_profile("ci")


def pytest_unconfigure(config) -> None:
    os.chdir(config.invocation_params.dir)
    shutil.rmtree(config.stash[SCRATCH], ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request, upstream) -> ServerProcess:
    """A fresh server per test module, SQLite, with the scripted upstream as its model.

    A module may define `server_env` (a dict, or a function returning one) for more environment.
    """
    env = {"CODEINTERP_MODEL_BASE_URL": upstream.base_url}
    extra = getattr(request.module, "server_env", None)
    env.update((extra() if callable(extra) else extra) or {})
    proc = start_server(tmp_path_factory.mktemp("server"), env=env)
    yield proc
    proc.stop()


def make_client(server: ServerProcess, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=api_key or server.api_key, max_retries=0, timeout=60,
                         _strict_response_validation=True)


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    with make_client(server) as c:
        yield c


@pytest.fixture(scope="module")
def other_client(server) -> openai.OpenAI:
    """A client whose key belongs to another project on the same server."""
    with make_client(server, server.create_key("other")) as c:
        yield c


@pytest.fixture
def async_client(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=60,
                              _strict_response_validation=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_env(request) -> dict:
    """Environment for a test's own server: SQLite (the default), then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_database() as database_url:
        yield {"CODEINTERP_DATABASE_URL": database_url}


@pytest.fixture(scope="session")
def contract() -> dict:
    return yaml.safe_load(CONTRACT.read_text())


@pytest.fixture(scope="module")
def served(server) -> dict:
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200
    return r.json()

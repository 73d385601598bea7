"""The test PostgreSQL (started by scripts/postgres.sh): fresh databases on it, and servers using them."""

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.helpers.server import ServerProcess, start_server


def postgres_url() -> str | None:
    """The test PostgreSQL (from scripts/postgres.sh); under CI it must be there."""
    url = os.environ.get("CODEINTERP_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI") == "true":
        pytest.fail("CODEINTERP_TEST_POSTGRES_URL is not set in CI; run the tests through scripts/test.sh")
    return url


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL; dropped afterwards. Yields its SQLAlchemy URL."""
    name = "ci_" + secrets.token_hex(6)
    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL; the test is skipped where there is none (outside CI)."""
    url = postgres_url()
    if not url:
        pytest.skip("CODEINTERP_TEST_POSTGRES_URL is not set (scripts/test.sh starts PostgreSQL)")
    with fresh_postgres_database(url) as database_url:
        yield database_url


@contextlib.contextmanager
def server_on_postgres(tmp_path: Path, env: dict | None = None) -> Iterator[ServerProcess]:
    """A server process whose database is a fresh one on the test PostgreSQL."""
    with postgres_database() as database_url:
        proc = start_server(tmp_path, env={**(env or {}), "CODEINTERP_DATABASE_URL": database_url})
        try:
            yield proc
        finally:
            proc.stop()

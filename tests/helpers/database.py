"""Reading a test server's own database (SQLite in its data directory, or the PostgreSQL it was
given) to check what the API cannot show, e.g. that nothing of a deleted object is left."""

import asyncio
import sqlite3

import asyncpg
from sqlalchemy.engine import make_url

from tests.helpers.server import ServerProcess


def _sqlite_rows(path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [(table, repr(row)) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')]


async def _postgres_rows(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        return [(table, r["row"]) for table in tables
                for r in await conn.fetch(f'SELECT row_to_json(t)::text AS row FROM "{table}" t')]
    finally:
        await conn.close()


def rows_mentioning(server: ServerProcess, *needles: str) -> list[tuple[str, str]]:
    """(table, row) for every row of every table whose text holds one of `needles`."""
    url = server.env.get("CODEINTERP_DATABASE_URL")
    rows = asyncio.run(_postgres_rows(url)) if url else _sqlite_rows(server.data_dir / "codeinterp.db")
    return [(table, row) for table, row in rows if any(needle in row for needle in needles)]

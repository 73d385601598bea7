"""SQLite for asyncio: statements run inline, on the calling loop.

aiosqlite (SQLAlchemy's async SQLite driver) sends every call (cursor, execute, fetch, close,
commit) to a thread of its own and back, about four thread hops per statement, and at each hop
the loop must win the GIL back from the server's other busy thread (the HTTP loop and the run
worker's loop each have one). Under WAL, reads never wait and writes are short, so statements
run directly on the loop: an object with aiosqlite's connection API over a plain `sqlite3`
connection, handed to SQLAlchemy through `create_async_engine(async_creator=)` (the URL's
`sqlite+aiosqlite` dialect stays, for its SQL and error classes).

Such an engine keeps one connection, so its sessions take turns (a session waits for the
connection without blocking the loop). With several connections, a session waiting for SQLite's
write lock held by another session of the same loop would block the loop that session needs to
commit. So sessions on such an engine must not wait on anything but the database while they hold
it (files, sandboxes, the network, the other loop): the other sessions wait for it.
"""

import sqlite3
from typing import Any


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> "InlineCursor":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._cursor.close()

    @property
    def description(self):
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> "InlineCursor":
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> "InlineCursor":
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self):
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def fetchall(self) -> list:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection  # SQLAlchemy's adapter reads this name to know the connection is open

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._connection.cursor())

    async def commit(self) -> None:
        self._connection.commit()

    async def rollback(self) -> None:
        self._connection.rollback()

    async def close(self) -> None:
        self._connection.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._connection.create_function(*args, **kwargs)

    def stop(self) -> None:
        self._connection.close()


def connector(path: str, timeout: float):
    """The `async_creator` for the database file at `path`."""
    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))
    return connect

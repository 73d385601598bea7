"""The database: SQLAlchemy 2 async engine and sessions, and Alembic migrations."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from sqlalchemy import event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from codeinterp.store import sqlite_inline
from codeinterp.store.text import json_text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    pass


def attribute_columns(model: type[Base]) -> tuple:
    """The model's columns labelled with its attribute names, for Core statements whose rows are
    read like the model's objects (`row.metadata_`)."""
    return tuple(getattr(model, a.key).label(a.key) for a in inspect(model).column_attrs)


def _prepare_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


SQLITE_BUSY_TIMEOUT_SECONDS = 30


# JSON columns (message content, run steps) are most of what a run reads and writes.
JSON_CODECS = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; SQLite statements run on the calling loop through one connection
    (see `sqlite_inline`)."""
    _prepare_sqlite_dir(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, async_creator=sqlite_inline.connector(parsed.database or ":memory:", SQLITE_BUSY_TIMEOUT_SECONDS),
            pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS, **JSON_CODECS)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # Under WAL, NORMAL keeps every commit through a process crash (kill -9); only a power
            # loss may drop the last commits, and then at most leaves orphan blobs for the sweep.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **JSON_CODECS)


class Database:
    """`Database(url)`; `await connect()`; `async with db.session() as s: ...`; `await close()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    async def connect(self) -> None:
        if self.engine is None:
            self.engine = create_engine(self.url)
            self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            await self.connect()
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed at the end (rolled back on error): for Core
        statements where no ORM object is needed (the run engine's frequent ones)."""
        if self.engine is None:
            await self.connect()
        async with self.engine.begin() as connection:
            yield connection

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self._sessions = None


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def run_migrations(url: str) -> None:
    """Upgrade the database at `url` to the newest revision (synchronous; not inside a running loop)."""
    from alembic import command

    _prepare_sqlite_dir(url)
    command.upgrade(_alembic_config(url), "head")


async def run_migrations_async(url: str) -> None:
    """`run_migrations` from async code (Alembic's env runs its own event loop in a thread)."""
    await asyncio.to_thread(run_migrations, url)

"""The database as the commands open it: the configured URL, migrated, one session."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.config import get_settings
from codeinterp.store.db import Database, run_migrations

T = TypeVar("T")


def in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate the configured database, run `work(session)` in one session, commit, and return its result."""
    url = get_settings().resolved_database_url
    run_migrations(url)

    async def run() -> T:
        db = Database(url)
        await db.connect()
        try:
            async with db.session() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await db.close()

    return asyncio.run(run())

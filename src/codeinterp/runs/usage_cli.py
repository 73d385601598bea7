"""`codeinterp usage`: code interpreter sessions per project and day, read from the store."""

import asyncio
import datetime

from codeinterp.config import get_settings
from codeinterp.store.db import Database, run_migrations
from codeinterp.store.ids import now
from codeinterp.store.usage import DAY, usage_by_day


async def usage_rows(database_url: str, days: int) -> list[tuple[str, str, int]]:
    """(UTC day, project id, sessions) for the last `days` days (today included), oldest first."""
    end = (now() // DAY + 1) * DAY
    db = Database(database_url)
    await db.connect()
    try:
        async with db.session() as session:
            rows = await usage_by_day(session, None, end - days * DAY, end)
    finally:
        await db.close()
    return [(datetime.datetime.fromtimestamp(day, datetime.timezone.utc).strftime("%Y-%m-%d"), project, sessions)
            for day, project, sessions in rows]


def print_usage(days: int = 7) -> None:
    url = get_settings().resolved_database_url
    run_migrations(url)
    rows = asyncio.run(usage_rows(url, max(days, 1)))
    width = max([len("project")] + [len(project) for _, project, _ in rows]) + 2
    print(f"{'day':<12}{'project':<{width}}{'sessions':>10}")
    for day, project, sessions in rows:
        print(f"{day:<12}{project:<{width}}{sessions:>10}")
    print(f"{'total':<{12 + width}}{sum(r[2] for r in rows):>10}")

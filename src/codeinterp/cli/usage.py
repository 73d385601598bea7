"""`codeinterp usage`: code interpreter sessions per project and day, read from the store."""

import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.cli.database import in_session
from codeinterp.store.ids import now
from codeinterp.store.projects import Project
from codeinterp.store.usage import DAY, usage_by_day


async def usage_rows(session: AsyncSession, days: int) -> list[tuple[str, str, str, int]]:
    """(UTC day, project id, project name, sessions) for the last `days` days (today included),
    oldest first."""
    end = (now() // DAY + 1) * DAY
    rows = await usage_by_day(session, None, end - days * DAY, end)
    names = dict((await session.execute(select(Project.id, Project.name))).all())
    return [(datetime.datetime.fromtimestamp(day, datetime.timezone.utc).strftime("%Y-%m-%d"), project,
             names.get(project, "-"), sessions) for day, project, sessions in rows]


def print_usage(days: int = 7) -> None:
    rows = in_session(lambda session: usage_rows(session, max(days, 1)))
    id_width = max([len("project")] + [len(r[1]) for r in rows]) + 2
    name_width = max([len("name")] + [len(r[2]) for r in rows]) + 2
    print(f"{'day':<12}{'project':<{id_width}}{'name':<{name_width}}{'sessions':>10}")
    for day, project, name, sessions in rows:
        print(f"{day:<12}{project:<{id_width}}{name:<{name_width}}{sessions:>10}")
    print(f"{'total':<{12 + id_width + name_width}}{sum(r[3] for r in rows):>10}")

"""Code interpreter sessions, counted per project and time bucket (OpenAI bills each session).

A row is written when a sandbox session starts for a thread or a container; usage reads
count rows by the time their session started."""

from sqlalchemy import BigInteger, Index, String, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.ids import now

DAY = 86400


class SessionUsage(Base):
    __tablename__ = "session_usage"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_session_usage_time", "started_at", "project_id"),)


async def record_session(session: AsyncSession, project_id: str, session_id: str,
                         started_at: int | None = None) -> None:
    """Count a sandbox session that started now (or at `started_at`); the caller commits.
    Counting the same session id again changes nothing."""
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(SessionUsage).values(
        session_id=session_id, project_id=project_id, started_at=started_at if started_at is not None else now()
    ).on_conflict_do_nothing(index_elements=["session_id"]))


async def sessions_by_bucket(session: AsyncSession, start: int, end: int, bucket_seconds: int,
                             project_ids: list[str] | None = None,
                             origin: int | None = None) -> dict[int, dict[str, int]]:
    """{bucket start: {project id: sessions}} for sessions started in [start, end), buckets
    `bucket_seconds` wide counted from `origin` (at most `start`; default `start`); only buckets
    and projects with sessions appear."""
    origin = start if origin is None else origin
    bucket = (SessionUsage.started_at - origin) // bucket_seconds
    stmt = (select(bucket.label("n"), SessionUsage.project_id, func.count())
            .where(SessionUsage.started_at >= start, SessionUsage.started_at < end)
            .group_by("n", SessionUsage.project_id))
    if project_ids is not None:
        stmt = stmt.where(SessionUsage.project_id.in_(project_ids))
    counts: dict[int, dict[str, int]] = {}
    for n, project_id, sessions in (await session.execute(stmt)).all():
        counts.setdefault(origin + int(n) * bucket_seconds, {})[project_id] = sessions
    return counts


async def usage_by_day(session: AsyncSession, project_id: str | None, start: int,
                       end: int) -> list[tuple[int, str, int]]:
    """(UTC day start, project id, sessions) for sessions started in [start, end), by day then
    project; one project's, or every project's when `project_id` is None."""
    counts = await sessions_by_bucket(session, start, end, DAY, None if project_id is None else [project_id],
                                      origin=start - start % DAY)
    return [(day, project, sessions) for day in sorted(counts) for project, sessions in sorted(counts[day].items())]

"""Tables shared by the replicas of one PostgreSQL database: the stored events of runs and
responses, the live replicas (a heartbeat each) and which replica drives which run or response
(or has its job in its own queue)."""

from sqlalchemy import Float, Integer, String, Text, column, delete, func, insert, literal_column, select, table, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.runs import Run


class StreamEvent(Base):
    __tablename__ = "stream_events"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)


class Replica(Base):
    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    heartbeat_at: Mapped[float] = mapped_column(Float)


class StreamOwner(Base):
    __tablename__ = "stream_owners"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    replica_id: Mapped[str] = mapped_column(String(64), index=True)


INSERT_EVENTS = insert(StreamEvent)
# procrastinate's jobs (its own schema, applied by migration 0008): a run's or response's job has
# its id as queueing lock, and waits in status `todo`
QUEUE_JOBS = table("procrastinate_jobs", column("queueing_lock"), column("status"))


async def events_after(c: AsyncConnection, stream_id: str, start: int) -> list[tuple[int, str, str]]:
    """(seq, name, data) of the stream's stored events from `start`, in order."""
    rows = await c.execute(select(StreamEvent.seq, StreamEvent.name, StreamEvent.data)
                           .where(StreamEvent.stream_id == stream_id, StreamEvent.seq >= start)
                           .order_by(StreamEvent.seq))
    return [tuple(r) for r in rows]


async def last_event(c: AsyncConnection, stream_id: str) -> tuple[int, str] | None:
    """(seq, name) of the stream's last stored event."""
    row = (await c.execute(select(StreamEvent.seq, StreamEvent.name).where(StreamEvent.stream_id == stream_id)
                           .order_by(StreamEvent.seq.desc()).limit(1))).one_or_none()
    return tuple(row) if row else None


async def next_seq(c: AsyncConnection, stream_id: str) -> int:
    last = (await c.execute(select(func.max(StreamEvent.seq)).where(StreamEvent.stream_id == stream_id))).scalar()
    return 0 if last is None else last + 1


async def own(c: AsyncConnection, stream_id: str, replica_id: str) -> None:
    await c.execute(insert(StreamOwner).values(stream_id=stream_id, replica_id=replica_id))


async def take(c: AsyncConnection, stream_id: str, replica_id: str) -> None:
    """The replica now drives the run or response (its job moved here)."""
    if not (await c.execute(update(StreamOwner).where(StreamOwner.stream_id == stream_id)
                            .values(replica_id=replica_id))).rowcount:
        await own(c, stream_id, replica_id)


async def session_holder(c: AsyncConnection, thread_id: str, run_id: str, alive_since: float) -> str | None:
    """The live replica that drove the thread's latest run before `run_id` (where its sandbox
    session is, when sessions are per replica), if any."""
    latest = (select(Run.id).where(Run.thread_id == thread_id, Run.id != run_id)
              .order_by(Run.created_at.desc()).limit(1).scalar_subquery())
    return (await c.execute(select(StreamOwner.replica_id).join(Replica, Replica.id == StreamOwner.replica_id)
                            .where(StreamOwner.stream_id == latest, Replica.heartbeat_at >= alive_since))).scalar()


async def live_replicas(c: AsyncConnection) -> set[str]:
    return set((await c.execute(select(Replica.id))).scalars().all())


async def forget_streams(c, stream_ids) -> None:
    """Delete the stored events and owners of these runs or responses (ids, or a query of ids)."""
    for kept in (StreamEvent, StreamOwner):
        await c.execute(delete(kept).where(kept.stream_id.in_(stream_ids)))


async def live_owner(c: AsyncConnection, stream_id: str, alive_since: float) -> str | None:
    """The replica driving the run or response, if it has beaten since `alive_since`."""
    return (await c.execute(select(StreamOwner.replica_id).join(Replica, Replica.id == StreamOwner.replica_id)
                            .where(StreamOwner.stream_id == stream_id, Replica.heartbeat_at >= alive_since))).scalar()


async def heartbeat(c: AsyncConnection, replica_id: str, t: float) -> None:
    if not (await c.execute(update(Replica).where(Replica.id == replica_id).values(heartbeat_at=t))).rowcount:
        await c.execute(insert(Replica).values(id=replica_id, heartbeat_at=t))


async def leave(c: AsyncConnection, replica_id: str) -> None:
    await c.execute(delete(Replica).where(Replica.id == replica_id))


async def claim_dead(c: AsyncConnection, before: float) -> list[str]:
    """Replicas whose last heartbeat is older than `before`, removed (locked rows are another
    replica's to sweep)."""
    dead = (await c.execute(select(Replica.id).where(Replica.heartbeat_at < before)
                            .with_for_update(skip_locked=True))).scalars().all()
    if dead:
        await c.execute(delete(Replica).where(Replica.id.in_(dead)))
    return list(dead)


def owned_by(ids_column, active_condition, replica_id: str):
    """A query of the active runs or responses (`ids_column` where `active_condition`) owned by
    the replica, whose job is not waiting in the queue."""
    return select(ids_column).where(active_condition, ids_column.in_(
        select(StreamOwner.stream_id).where(StreamOwner.replica_id == replica_id)), ~_waiting(ids_column))


def _waiting(ids_column):
    """Whether the run's or response's job waits in the queue."""
    return select(QUEUE_JOBS.c.queueing_lock).where(QUEUE_JOBS.c.queueing_lock == ids_column,
                                                    QUEUE_JOBS.c.status == literal_column("'todo'")).exists()


def orphaned(ids_column, active_condition):
    """A query of the active runs or responses (`ids_column` where `active_condition`) whose
    owner is not a live replica (or that have no owner), and whose job is not waiting in the
    queue (a waiting job is run by whichever replica takes it)."""
    return select(ids_column).where(
        active_condition,
        ~select(StreamOwner.stream_id).join(Replica, Replica.id == StreamOwner.replica_id)
        .where(StreamOwner.stream_id == ids_column).exists(),
        ~_waiting(ids_column))

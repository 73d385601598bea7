"""Events of runs and responses across replicas (PostgreSQL only; one process keeps `EventChannel`).

The replica that drives a run publishes to a `StoredEventChannel`: its own readers get each
event from memory at once, as on one process, and `EventWriter` stores the events in
`stream_events` (stream id, sequence, name, data) in order, batch by batch, each batch's commit
carrying one NOTIFY per stream with only its id and last sequence. On every replica an
`EventFollower` LISTENs and wakes its readers of that stream, which read the rows after the last
one they sent: nothing lost or repeated, in order, from any point (a reader that reconnects
gives the sequence to start after).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from codeinterp.runs.events import Event, EventChannel, LEG_END_EVENTS
from codeinterp.store import replicas as store
from codeinterp.store.db import Database

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "codeinterp_events"
NOTIFY = text("SELECT pg_notify(:channel, :payload)")
RETRY_SECONDS = 0.5
WRITE_ATTEMPTS = 20  # then the batch is dropped (logged): a database down this long fails runs anyway
# A reader also looks for new rows this often without a wake-up (a LISTEN connection that broke).
FOLLOW_POLL_SECONDS = 2.0


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def plain_url(url: str) -> str:
    """The libpq URL of an SQLAlchemy PostgreSQL URL (for asyncpg's own connection)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class EventWriter:
    """Stores published events in order and notifies the replicas (on the run worker's loop)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[dict] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self._next: dict[str, int] = {}  # stream id -> its next sequence

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event writer")

    async def stop(self) -> None:
        """Write what is pending (within a few seconds), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flushed(), 5)
        except TimeoutError:
            log.warning("%d events were not stored before stopping", len(self._pending))
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def flushed(self) -> None:
        while self._pending or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    def channel(self, stream_id: str, end_events: frozenset[str] = LEG_END_EVENTS) -> "StoredEventChannel":
        """A channel whose events are also stored, numbered after those the stream already has
        here (a run's legs share one sequence)."""
        return StoredEventChannel(self, stream_id, end_events)

    async def continued_channel(self, stream_id: str, end_events: frozenset[str] = LEG_END_EVENTS
                                ) -> "StoredEventChannel":
        """A channel for a stream started on another replica: numbered after its stored events."""
        async with self.db.transaction() as c:
            self._next[stream_id] = await store.next_seq(c, stream_id)
        return self.channel(stream_id, end_events)

    def append(self, stream_id: str, encoded: Event) -> None:
        seq = self._next.get(stream_id, 0)
        self._next[stream_id] = seq + 1
        self._pending.append({"stream_id": stream_id, "seq": seq, "name": encoded[0], "data": encoded[1]})
        self._idle.clear()
        self._wake.set()

    def forget(self, stream_id: str) -> None:
        """The stream has ended for good here (its sequence is no longer needed)."""
        self._next.pop(stream_id, None)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    await self._write(batch)
                    break
                except Exception:
                    log.exception("storing %d events failed (attempt %d)", len(batch), attempt + 1)
                    await asyncio.sleep(RETRY_SECONDS)

    async def _write(self, batch: list[dict]) -> None:
        last: dict[str, int] = {}
        for row in batch:
            last[row["stream_id"]] = row["seq"]
        async with self.db.transaction() as c:
            await c.execute(store.INSERT_EVENTS, batch)
            for stream_id, seq in last.items():
                await c.execute(NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": f"{stream_id} {seq}"})


class StoredEventChannel(EventChannel):
    def __init__(self, writer: EventWriter, stream_id: str, end_events: frozenset[str]) -> None:
        super().__init__(end_events)
        self.writer = writer
        self.stream_id = stream_id

    def publish(self, name: str, data: dict) -> Event | None:
        encoded = super().publish(name, data)
        if encoded is not None:
            self.writer.append(self.stream_id, encoded)
        return encoded


class EventFollower:
    """Readers of stored streams, woken by NOTIFY (on the HTTP server's loop)."""

    def __init__(self, db: Database, url: str) -> None:
        self.db = db
        self.url = plain_url(url)
        self._connection: asyncpg.Connection | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self.url)
        await self._connection.add_listener(NOTIFY_CHANNEL, self._notified)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _notified(self, _connection, _pid, _channel, payload: str) -> None:
        stream_id = payload.partition(" ")[0]
        for waiter in self._waiters.get(stream_id, ()):
            waiter.set()

    def stream(self, stream_id: str, end_events: frozenset[str],
               going_on: Callable[[], Awaitable[bool]] | None = None) -> "FollowedStream":
        return FollowedStream(self, stream_id, end_events, going_on)

    async def follow(self, stream_id: str, start: int, end_events: frozenset[str],
                     going_on: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[list[Event]]:
        """The stream's events from sequence `start`, in batches, until an end event (or `error`),
        or until `going_on()` says the run or response has ended without one (its replica lost
        the events: the stream just ends)."""
        wake = asyncio.Event()
        self._waiters.setdefault(stream_id, set()).add(wake)
        position = start
        ended = False
        try:
            while True:
                wake.clear()  # before reading: a NOTIFY that comes during the read is kept
                async with self.db.transaction() as c:
                    rows = await store.events_after(c, stream_id, position)
                if rows:
                    ends = [n for n, (_, name, _) in enumerate(rows) if name in end_events or name == "error"]
                    if ends:
                        rows = rows[:ends[0] + 1]
                    position = rows[-1][0] + 1
                    yield [(name, data) for _, name, data in rows]
                    if ends:
                        return
                    continue
                if ended:
                    return
                try:
                    await asyncio.wait_for(wake.wait(), FOLLOW_POLL_SECONDS)
                except TimeoutError:
                    ended = going_on is not None and not await going_on()  # then one last read
        finally:
            waiters = self._waiters.get(stream_id)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[stream_id]


class FollowedStream:
    """A stored stream read like an `EventChannel` (`subscribe(start)`)."""

    def __init__(self, follower: EventFollower, stream_id: str, end_events: frozenset[str],
                 going_on: Callable[[], Awaitable[bool]] | None) -> None:
        self.follower = follower
        self.stream_id = stream_id
        self.end_events = end_events
        self.going_on = going_on

    def subscribe(self, start: int = 0) -> AsyncIterator[list[Event]]:
        return self.follower.follow(self.stream_id, start, self.end_events, self.going_on)

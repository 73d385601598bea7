"""This replica among others on one PostgreSQL: a heartbeat, where a new run is queued, and the
sweep that hands on the waiting jobs and ends the runs and responses of replicas that are gone
(killed, or stopped without finishing them).

Every replica writes its heartbeat every HEARTBEAT_SECONDS. A run or response is owned by the
replica whose queue gets its job (a `stream_owners` row written with it), then by the replica
that takes the job. A replica whose heartbeat is older than DEAD_AFTER_SECONDS is gone: the first
live replica to see it (row locks, SKIP LOCKED) removes it, hands the jobs waiting in its own
queue to the shared queue, ends the jobs its worker was running, and ends every active run and
response it owned that has no job waiting as `failed` with ORPHAN_ERROR, storing the terminal
event so that readers on any replica see the stream end. So a replica killed with -9 leaves
nothing active for longer than DEAD_AFTER_SECONDS + HEARTBEAT_SECONDS (12 s), and its waiting
runs are taken by another replica's worker within POLL_SECONDS more (14 s).
"""

import asyncio
import logging
import time

import asyncpg
from sqlalchemy import select

from codeinterp.runs.engine import RESTART_ERROR
from codeinterp.runs.responses_engine import RESTART_ERROR as RESPONSE_RESTART_ERROR
from codeinterp.runs.run_queue import RunQueue
from codeinterp.runs.shared_events import NOTIFY, NOTIFY_CHANNEL, plain_url
from codeinterp.store import replicas as store
from codeinterp.store import responses as response_store
from codeinterp.store.db import Database
from codeinterp.store.runs import ACTIVE_RUN_STATUSES, Run
from codeinterp.store.text import json_text
from codeinterp.store.threads import fail_runs

log = logging.getLogger(__name__)

RESPONSE_ACTIVE = response_store.Response.status.in_(response_store.ACTIVE_STATUSES)
CONTROL_CHANNEL = "codeinterp_control"  # "cancel|resume <replica id> <run or response id>"
RESUME_WAIT_SECONDS = 10.0
HEARTBEAT_SECONDS = 2.0
DEAD_AFTER_SECONDS = 10.0
ORPHAN_ERROR = {"code": "server_error",
                "message": "The server replica running this was lost (it stopped or crashed), so it was stopped."}


class Replicas:
    """`await start()` before the engines take requests; `await stop()` after they stopped."""

    def __init__(self, db: Database, url: str, runs, responses, replica_id: str, queue: RunQueue,
                 sessions_shared: bool) -> None:
        self.db = db
        self.queue = queue
        self.sessions_shared = sessions_shared  # a sandbox session is reachable from any replica
        self.url = plain_url(url)
        self._listener: asyncpg.Connection | None = None
        self.runs = runs  # RunEngine (fail_runs)
        self.responses = responses  # ResponseEngine
        self.id = replica_id
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()  # cancels and resumes other replicas asked for

    async def start(self) -> None:
        """Join; what this replica left unfinished before a restart ends now, `failed`."""
        async with self.db.transaction() as c:
            await store.heartbeat(c, self.id, time.time())
            run_ids = (await c.execute(store.owned_by(Run.id, Run.status.in_(ACTIVE_RUN_STATUSES), self.id))
                       ).scalars().all()
            response_ids = (await c.execute(store.owned_by(response_store.Response.id, RESPONSE_ACTIVE, self.id))
                            ).scalars().all()
        await self._fail(run_ids, response_ids, RESTART_ERROR, RESPONSE_RESTART_ERROR)
        if run_ids or response_ids:
            log.warning("marked %d runs and %d responses unfinished before a restart as failed",
                        len(run_ids), len(response_ids))
        await self.sweep()
        self._listener = await asyncpg.connect(self.url)
        await self._listener.add_listener(CONTROL_CHANNEL, self._control)
        self._task = asyncio.create_task(self._beat(), name="replica heartbeat")

    async def stop(self) -> None:
        """Leave: what this replica still owns is ended by the others at their next sweep."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._listener is not None:
            await self._listener.close()
        try:
            async with self.db.transaction() as c:
                await store.leave(c, self.id)
        except Exception:
            log.exception("removing replica %s failed", self.id)

    async def own(self, c, stream_id: str) -> None:
        """In the transaction that creates a run or response: this replica drives it."""
        await store.own(c, stream_id, self.id)

    async def place(self, c, thread_id: str, run_id: str, here: bool) -> str | None:
        """In the transaction that creates a run: the replica whose own queue gets it, or None for
        the shared queue. This one when `here`; else the live replica that holds the thread's
        sandbox session, if sessions are per replica and one does; else the shared queue. The run
        is owned by that replica (by this one for the shared queue) until a replica takes it."""
        target = self.id
        if not here:
            target = None
            if not self.sessions_shared:
                target = await store.session_holder(c, thread_id, run_id, time.time() - DEAD_AFTER_SECONDS)
        await store.own(c, run_id, target or self.id)
        return target

    async def store_first_events(self, c, stream_id: str, events: list[tuple[str, str]]) -> None:
        """In the transaction that creates a run queued for another replica: its first events."""
        await c.execute(store.INSERT_EVENTS, [{"stream_id": stream_id, "seq": n, "name": name, "data": data}
                                              for n, (name, data) in enumerate(events)])

    async def take(self, c, stream_id: str) -> None:
        """In a transaction: this replica now drives the run or response (it took its job)."""
        await store.take(c, stream_id, self.id)

    async def live_owner(self, stream_id: str) -> str | None:
        """The other live replica driving this run or response, if any."""
        async with self.db.transaction() as c:
            owner = await store.live_owner(c, stream_id, time.time() - DEAD_AFTER_SECONDS)
        return owner if owner != self.id else None

    async def request_cancel(self, replica_id: str, stream_id: str) -> None:
        async with self.db.transaction() as c:
            await c.execute(NOTIFY, {"channel": CONTROL_CHANNEL, "payload": f"cancel {replica_id} {stream_id}"})

    async def request_resume(self, replica_id: str, run_id: str) -> int:
        """Tell the replica driving the run that its tool outputs are stored; the sequence of the
        run's first event of the new leg (after the `thread.run.requires_action` that ended the
        last one, which that replica may still be storing)."""
        deadline = time.monotonic() + RESUME_WAIT_SECONDS
        while True:
            async with self.db.transaction() as c:
                last = await store.last_event(c, run_id)
            if (last is not None and last[1] == "thread.run.requires_action") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        async with self.db.transaction() as c:
            await c.execute(NOTIFY, {"channel": CONTROL_CHANNEL, "payload": f"resume {replica_id} {run_id}"})
        return 0 if last is None else last[0] + 1

    def _control(self, _connection, _pid, _channel, payload: str) -> None:
        action, replica_id, stream_id = payload.split(" ")
        if replica_id != self.id:
            return
        if action == "resume":
            work = self.runs.resume_here(stream_id)
        else:
            work = (self.runs if stream_id.startswith("run_") else self.responses).cancel_here(stream_id)
        task = asyncio.create_task(work, name=f"{action} {stream_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with self.db.transaction() as c:
                    await store.heartbeat(c, self.id, time.time())
                await self.sweep()
            except Exception:
                log.exception("replica heartbeat or sweep failed")

    async def sweep(self) -> None:
        """End the runs and responses whose replica is gone (or that have none)."""
        async with self.db.transaction() as c:
            dead = await store.claim_dead(c, time.time() - DEAD_AFTER_SECONDS)
            live = await store.live_replicas(c)
        await self.queue.sweep(live, DEAD_AFTER_SECONDS)
        async with self.db.transaction() as c:
            run_ids = (await c.execute(store.orphaned(Run.id, Run.status.in_(ACTIVE_RUN_STATUSES)))).scalars().all()
            response_ids = (await c.execute(store.orphaned(response_store.Response.id, RESPONSE_ACTIVE))
                            ).scalars().all()
        if dead:
            log.warning("replicas %s are gone", ", ".join(dead))
        await self._fail(run_ids, response_ids, ORPHAN_ERROR, ORPHAN_ERROR)
        if run_ids or response_ids:
            log.warning("ended %d runs and %d responses of lost replicas as failed", len(run_ids), len(response_ids))

    async def fail_lost(self, response_id: str) -> None:
        """A response whose job came here but whose replica is gone (its inputs were in that
        replica's memory): it ends `failed` as the lost replica's others."""
        async with self.db.transaction() as c:
            active = (await c.execute(select(response_store.Response.id).where(
                response_store.Response.id == response_id, RESPONSE_ACTIVE))).scalars().all()
        await self._fail([], active, ORPHAN_ERROR, ORPHAN_ERROR)

    async def _fail(self, run_ids, response_ids, run_error: dict, response_error: dict) -> None:
        if run_ids:
            async with self.db.session() as s:
                runs = await fail_runs(s, run_ids, run_error)
            for run in runs:
                await self._end_stream(run["id"], "thread.run.failed", run)
        if response_ids:
            async with self.db.transaction() as c:
                await response_store.fail_unfinished(c, response_error, ids=response_ids)
            async with self.db.session() as s:
                rows = (await s.execute(select(response_store.Response).where(
                    response_store.Response.id.in_(response_ids)))).scalars().all()
                for row in rows:
                    await self._end_stream(row.id, "response.failed", response_store.response_to_dict(row, []),
                                           response=True)

    async def _end_stream(self, stream_id: str, name: str, data: dict, response: bool = False) -> None:
        """Store the stream's terminal event (after the ones its replica stored) and notify."""
        async with self.db.transaction() as c:
            seq = await store.next_seq(c, stream_id)
            if response:
                data = {"type": name, "sequence_number": seq, "response": data}
            await c.execute(store.INSERT_EVENTS, [{"stream_id": stream_id, "seq": seq, "name": name,
                                                   "data": json_text(data)}])
            await c.execute(NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": f"{stream_id} {seq}"})

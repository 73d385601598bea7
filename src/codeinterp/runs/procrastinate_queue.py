"""The run queue on PostgreSQL: procrastinate (see `run_queue.RunQueue` for the contract).

Each job is one run or response: `lock` its thread (one run per thread at a time), `queueing_lock`
its id. The queues: `ci_any`, taken by every replica, and one per replica (`ci_` and a digest of
its id: procrastinate NOTIFYs on a channel named after the queue, which PostgreSQL caps at 63
bytes), taken by that replica only. The worker runs on the run worker's loop, with its own
psycopg pool; it heartbeats every HEARTBEAT_SECONDS, so the jobs of a replica killed mid-run are
found by `sweep` once its worker has been silent for the replicas' dead-after time.
"""

import asyncio
import hashlib
import logging

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status

from codeinterp.runs.run_queue import Handler, Job, RunQueue
from codeinterp.runs.shared_events import plain_url

log = logging.getLogger(__name__)

SHARED_QUEUE = "ci_any"
TASK_NAME = "codeinterp.drive"
CONCURRENCY = 200  # runs and responses a replica drives at once (each mostly waits on I/O)
HEARTBEAT_SECONDS = 2.0
# Jobs moved to the shared queue (from a lost replica's own) are not announced: workers look this often.
POLL_SECONDS = 2.0
POOL_MIN, POOL_SIZE = 4, 8  # connections kept open, at most
STOP_SECONDS = 10.0
MOVE_ORPHANED = """
UPDATE procrastinate_jobs SET queue_name = %(shared)s
 WHERE status = 'todo' AND queue_name LIKE 'ci\\_%%' AND queue_name <> %(shared)s
   AND NOT (queue_name = ANY(%(live)s))
RETURNING queueing_lock
"""


def replica_queue(replica_id: str) -> str:
    return "ci_" + hashlib.sha256(replica_id.encode()).hexdigest()[:16]


class ProcrastinateQueue(RunQueue):
    shared = True

    def __init__(self, database_url: str, replica_id: str) -> None:
        self.replica_id = replica_id
        self.own_queue = replica_queue(replica_id)
        self.app = App(connector=PsycopgConnector(conninfo=plain_url(database_url), min_size=POOL_MIN, max_size=POOL_SIZE))
        self._handler: Handler | None = None
        self._worker: asyncio.Task | None = None

        @self.app.task(name=TASK_NAME)
        async def drive(kind: str, stream_id: str, lock: str | None = None) -> None:
            # the job's coroutine only waits: a worker stopping cancels it, the run goes on
            await asyncio.shield(self._handler(Job(kind, stream_id, lock)))

        self._task = drive

    async def start(self, handler: Handler) -> None:
        self._handler = handler
        await self.app.open_async()
        self._worker = asyncio.create_task(self.app.run_worker_async(
            queues=[self.own_queue, SHARED_QUEUE], name=f"codeinterp {self.replica_id}",
            concurrency=CONCURRENCY, install_signal_handlers=False, update_heartbeat_interval=HEARTBEAT_SECONDS,
            fetch_job_polling_interval=POLL_SECONDS, delete_jobs="successful"), name="run queue worker")

    async def defer(self, job: Job, replica_id: str | None) -> None:
        queue = replica_queue(replica_id) if replica_id else SHARED_QUEUE
        try:
            await self._task.configure(queue=queue, lock=job.lock, queueing_lock=job.stream_id).defer_async(
                kind=job.kind, stream_id=job.stream_id, lock=job.lock)
        except AlreadyEnqueued:
            pass  # the stream's job is already waiting: it drives it

    def stop_taking(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()  # procrastinate stops fetching, then waits for the jobs it runs

    async def stop(self) -> None:
        self.stop_taking()
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.gather(self._worker, return_exceptions=True), STOP_SECONDS)
            except TimeoutError:
                log.warning("the run queue's worker did not stop within %s s", STOP_SECONDS)
        await self.app.close_async()

    async def sweep(self, live_replicas: set[str], dead_after_seconds: float) -> None:
        await self.app.open_async()  # at once if open (the replica's first sweep comes before `start`)
        manager = self.app.job_manager
        moved = await self.app.connector.execute_query_all_async(
            query=MOVE_ORPHANED, shared=SHARED_QUEUE, live=[replica_queue(r) for r in live_replicas])
        if moved:
            log.warning("handed %d waiting jobs of lost replicas to the shared queue", len(moved))
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=dead_after_seconds)
        for job in stalled:
            await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
        if stalled:
            log.warning("ended %d jobs of lost replicas' workers", len(stalled))

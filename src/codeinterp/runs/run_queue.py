"""Where runs and responses wait to be driven, and who drives them: one interface, two queues.

`InProcessQueue` (SQLite, one process) starts each job at once as a task of this process, as the
run worker always did. `ProcrastinateQueue` (PostgreSQL, several replicas) makes each a job in
procrastinate's tables: every replica's worker (on the run worker's loop) takes jobs from the
shared queue and from its own, so any replica runs any run, one at a time per thread (the job's
lock), at most one waiting job per run (its queueing lock).
"""

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    kind: str  # "run" or "response"
    stream_id: str  # the run's or the response's id
    lock: str | None = None  # jobs with the same lock run one at a time, in order (a run's thread)


Handler = Callable[[Job], Awaitable[None]]


class RunQueue(abc.ABC):
    """Jobs are driven by `handler(job)` (given to `start`) on the run worker's loop, each in an
    asyncio task of its own that only the engine cancels; a job ends when its handler returns.
    All methods are called on that loop."""

    #: False when every job runs in this process (no replica but this one may take it)
    shared: bool = False

    @abc.abstractmethod
    async def start(self, handler: Handler) -> None:
        """Begin taking jobs; `handler` drives each. Jobs deferred before `start` wait for it."""

    @abc.abstractmethod
    async def defer(self, job: Job, replica_id: str | None) -> None:
        """Queue the job, committed when this returns: for `replica_id`'s worker only (its own
        queue), or for any replica's worker when None. Raises if it cannot be queued (the caller
        ends the run or response). A second job for a stream that has one waiting is refused."""

    @abc.abstractmethod
    def stop_taking(self) -> None:
        """Take no new job (the server is draining); jobs being driven go on."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop; jobs still being driven are left to the engines (which end them as they stop)."""

    async def sweep(self, live_replicas: set[str], dead_after_seconds: float) -> None:
        """Hand the jobs waiting in the own queues of replicas not in `live_replicas` to the
        shared queue, and end (as failed) the jobs being driven by workers silent for
        `dead_after_seconds`, which frees their locks; the runs themselves are the caller's to
        end. (Nothing to do in one process.)"""


class InProcessQueue(RunQueue):
    """Every job starts at once, as a task of this process (no queueing latency, nothing stored)."""

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, handler: Handler) -> None:
        self._handler = handler

    async def defer(self, job: Job, replica_id: str | None) -> None:
        task = asyncio.create_task(self._handler(job), name=f"{job.kind} {job.stream_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop_taking(self) -> None:
        pass

    async def stop(self) -> None:
        pass

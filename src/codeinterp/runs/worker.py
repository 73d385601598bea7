"""The run worker: the run engine and the sandbox sessions on an event loop of their own, in a
thread of the server process.

Runs do a lot of small work (model streams, database writes, sandbox I/O). On the HTTP server's
loop that work queues in front of every request, so polling a run slows down as more runs go
on. Here the server's loop only answers requests; what concerns runs is passed to the worker's
loop and awaited from there. The worker has its own database engine (an async engine's
connections belong to the loop that opened them).
"""

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any

import uvloop

from codeinterp.config import Settings
from codeinterp.runs.engine import RunEngine, RunHandle
from codeinterp.runs.replicas import Replicas
from codeinterp.runs.run_queue import InProcessQueue, Job, RunQueue
from codeinterp.runs.responses_engine import ResponseEngine
from codeinterp.runs.shared_events import EventWriter, is_postgres
from codeinterp.runs.responses_run import ActiveResponse
from codeinterp.sandbox import SandboxBackend, create_backend
from codeinterp.store.db import Database

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30
SHARED_SESSION_BACKENDS = ("remote", "kubernetes")  # a session reachable from every replica


class RunWorker:
    """`await start()` in the server's lifespan; the request methods mirror `RunEngine`'s."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.loop = uvloop.new_event_loop()  # as uvicorn's own; cheaper per callback than asyncio's
        self._thread = threading.Thread(target=self.loop.run_forever, name="run-worker", daemon=True)
        self.db: Database | None = None
        self.sandboxes: SandboxBackend | None = None
        self.engine: RunEngine | None = None
        self.responses: ResponseEngine | None = None
        self._draining: concurrent.futures.Future | None = None
        self.events: EventWriter | None = None  # with PostgreSQL (several replicas)
        self.replicas: Replicas | None = None
        self.queue: RunQueue | None = None

    def drain(self, grace_seconds: float) -> None:
        """From any thread (the server got SIGTERM): see RunEngine.drain; `stop` waits for it."""
        if self.engine is not None and self._draining is None and not self.loop.is_closed():
            async def drain_both() -> None:
                self.queue.stop_taking()
                await asyncio.gather(self.engine.drain(grace_seconds), self.responses.drain(grace_seconds))
            self._draining = asyncio.run_coroutine_threadsafe(drain_both(), self.loop)

    async def check_sandboxes(self) -> None:
        """Raises when the worker's loop does not answer or the sandbox backend cannot make sessions."""
        if self.sandboxes is None:
            raise RuntimeError("The run worker is not started.")
        await self._call(self.sandboxes.check())

    def counts(self) -> dict[str, int]:
        """For metrics: the sandbox backend's counts and the runs this worker drives (read from any thread)."""
        counts = dict(self.sandboxes.counts()) if self.sandboxes is not None else {}
        if self.engine is not None:
            counts["runs_active"] = self.engine.active_runs
        return counts

    async def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the worker's loop and wait for it here (cancelling it if this is cancelled)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._thread.start()
        try:
            await self._call(self._start())
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.db = Database(self.database_url)
        await self.db.connect()
        self.sandboxes = create_backend(self.settings)
        await self.sandboxes.start()
        self.engine = RunEngine(self.db, self.sandboxes, self.settings)
        self.responses = ResponseEngine(self.db, self.engine.containers, self.engine.upstream, self.settings)
        several = is_postgres(self.database_url)  # several replicas may share the database
        if self.settings.run_queue == "procrastinate" and not several:
            raise ValueError("CODEINTERP_RUN_QUEUE=procrastinate needs PostgreSQL (CODEINTERP_DATABASE_URL).")
        self.queue = InProcessQueue()
        if several and self.settings.run_queue != "inprocess":
            from codeinterp.runs.procrastinate_queue import ProcrastinateQueue  # psycopg, only for PostgreSQL
            self.queue = ProcrastinateQueue(self.database_url, self.settings.resolved_replica_id)
        if several:
            self.events = EventWriter(self.db)
            self.events.start()
            self.replicas = Replicas(self.db, self.database_url, self.engine, self.responses,
                                     self.settings.resolved_replica_id, self.queue,
                                     sessions_shared=self.settings.sandbox_backend in SHARED_SESSION_BACKENDS)
            for engine in (self.engine, self.responses):
                engine.events, engine.replicas = self.events, self.replicas
        for engine in (self.engine, self.responses):
            engine.queue = self.queue
        await self.engine.start(fail_unfinished=not several)
        await self.responses.start(fail_unfinished=not several)
        if self.replicas is not None:
            await self.replicas.start()
        await self.queue.start(self._drive_job)

    async def _drive_job(self, job: Job) -> None:
        await (self.engine.run_job if job.kind == "run" else self.responses.response_job)(job)

    async def stop(self) -> None:
        if self._thread.is_alive():
            self.drain(self.settings.shutdown_grace_seconds)
            if self._draining is not None:
                try:
                    await asyncio.wrap_future(self._draining)
                except Exception:
                    log.exception("ending the runs in flight failed")
            try:
                await asyncio.wait_for(self._call(self._stop()), STOP_TIMEOUT_SECONDS)
            except Exception:
                log.exception("stopping the run worker failed")
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join, 10)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()

    async def _stop(self) -> None:
        closers = [self.responses and self.responses.stop, self.engine and self.engine.stop,
                   self.queue and self.queue.stop, self.events and self.events.stop, self.replicas and self.replicas.stop,
                   self.sandboxes and self.sandboxes.stop, self.db and self.db.close]
        for close in filter(None, closers):
            try:
                await close()
            except Exception:
                log.exception("closing %r failed", close)

    # ---- requests --------------------------------------------------------------------------

    async def create_run(self, project_id: str, thread_id: str, body: dict) -> RunHandle:
        return await self._call(self.engine.create_run(project_id, thread_id, body))

    async def create_thread_and_run(self, project_id: str, body: dict) -> RunHandle:
        return await self._call(self.engine.create_thread_and_run(project_id, body))

    async def submit_tool_outputs(self, project_id: str, thread_id: str, run_id: str, body: dict) -> RunHandle:
        return await self._call(self.engine.submit_tool_outputs(project_id, thread_id, run_id, body))

    async def cancel_run(self, project_id: str, thread_id: str, run_id: str) -> dict:
        return await self._call(self.engine.cancel_run(project_id, thread_id, run_id))

    async def thread_deleted(self, project_id: str, thread_id: str) -> None:
        await self._call(self.engine.containers.close_thread(project_id, thread_id))

    async def create_response(self, project_id: str, body: dict) -> ActiveResponse:
        return await self._call(self.responses.create(project_id, body))

    async def wait_response(self, active: ActiveResponse) -> dict:
        """The response once it has ended (the response goes on if the caller stops waiting)."""
        async def wait() -> dict:
            await active.done.wait()
            return active.as_dict()
        return await self._call(wait())

    async def active_response(self, project_id: str, response_id: str, include: set[str]) -> dict | None:
        """The response as it stands, if it is going on (else None: read it from the database)."""
        async def read() -> dict | None:
            return self.responses.active(project_id, response_id, include)
        return await self._call(read())

    async def response_channel(self, project_id: str, response_id: str):
        """The event channel of the response, if it is going on here (else None)."""
        async def read():
            return self.responses.channel(project_id, response_id)
        return await self._call(read())

    async def cancel_response(self, project_id: str, response_id: str) -> dict:
        return await self._call(self.responses.cancel(project_id, response_id))

    async def delete_response(self, project_id: str, response_id: str) -> None:
        await self._call(self.responses.delete(project_id, response_id))

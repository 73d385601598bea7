"""The run engine: creates runs, drives them in its own asyncio tasks, cancels, expires and
recovers them.

The HTTP layer calls `create_run`, `create_thread_and_run`, `submit_tool_outputs` and
`cancel_run` through `RunWorker`, on the worker's loop; each returns at once and the run goes on
in a task the engine owns, so a client that disconnects does not stop its run.
`RunHandle.events()` yields the leg's events (name, JSON text) for SSE, in batches.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, select

from codeinterp import metrics
from codeinterp.config import Settings
from codeinterp.logs import log_context
from codeinterp.runs.events import Event, EventChannel, event
from codeinterp.runs.run_fields import run_fields
from codeinterp.runs.assistants_run import ActiveRun, RunLeg, end_run
from codeinterp.runs.cancelling import CANCEL_GRACE_SECONDS, interrupt, request_cancel
from codeinterp.runs.turn_loop import Cancelled, Stopped
from codeinterp.upstream.client import UpstreamError
from codeinterp.runs.upstream_model import UpstreamModel
from codeinterp.runs.containers import Containers
from codeinterp.runs.run_queue import InProcessQueue, Job, RunQueue
from codeinterp.store.assistants import Assistant
from codeinterp.store.messages import create_message
from codeinterp.store.threads import Thread, create_thread, fail_runs, thread_to_dict
from codeinterp.store.db import Database
from codeinterp.store.errors import InvalidRequest, NotFound, Unavailable
from codeinterp.store.ids import new_id, now
from codeinterp.store.ownership import owned
from codeinterp.store.runs import ACTIVE_RUN_STATUSES, RUN_COLUMNS, Run, RunStep, get_run, run_to_dict, step_to_dict

log = logging.getLogger(__name__)

# Statements of every run's creation, built once.
ASSISTANT = select(Assistant.__table__).where(Assistant.id == bindparam("row_id"))
THREAD_AND_ACTIVE_RUN = select(Thread.project_id, select(Run.id).where(
    Run.project_id == bindparam("project_id"), Run.thread_id == Thread.id, Run.status.in_(ACTIVE_RUN_STATUSES)
).limit(1).scalar_subquery()).where(Thread.id == bindparam("thread_id"))
INSERT_RUN = insert(Run).returning(*RUN_COLUMNS)
SHUTDOWN_ERROR = {"code": "server_error",
                  "message": "The server was shut down or restarted while this run was in progress, so the run "
                             "was stopped. Create a new run."}
RESTART_ERROR = {"code": "server_error",
                 "message": "The server restarted while this run was in progress, so the run was stopped."}
QUEUE_ERROR = {"code": "server_error", "message": "The run could not be queued (the database failed); create it again."}


@dataclass
class RunHandle:
    run: dict
    channel: EventChannel | None  # None: the run goes on on another replica (`follow` its stored events)
    start: int = 0
    prefix: list[Event] = field(default_factory=list)
    thread: dict | None = None

    async def events(self) -> AsyncIterator[list[Event]]:
        """The leg's events in batches (see `EventChannel.subscribe`)."""
        prefix = self.prefix
        async for batch in self.channel.subscribe(self.start):
            yield prefix + batch
            prefix = []
        if prefix:
            yield prefix


class RunEngine:
    def __init__(self, db: Database, sandboxes, settings: Settings) -> None:
        self.db = db
        self.sandboxes = sandboxes
        self.settings = settings
        self.containers = Containers(db, sandboxes, settings)
        self.upstream = UpstreamModel(settings)
        self._active: dict[str, ActiveRun] = {}
        self._starting: set[str] = set()  # threads whose run is being created right now
        self._stopping = False
        self._draining = False
        self.events = None  # EventWriter with several replicas (events stored), else None
        self.replicas = None  # Replicas with several replicas (who drives which run), else None
        self.queue: RunQueue = InProcessQueue()  # where runs wait to be driven (set by RunWorker)

    def _channel(self, run_id: str) -> EventChannel:
        return self.events.channel(run_id) if self.events is not None else EventChannel()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, fail_unfinished: bool = True) -> None:
        """Runs a previous process left unfinished end as `failed`, saying why (with several
        replicas, `Replicas` ends those of replicas that are gone instead)."""
        await self.containers.start()
        if fail_unfinished:
            async with self.db.session() as s:
                stale = (await s.execute(select(Run.id).where(Run.status.in_(ACTIVE_RUN_STATUSES)))).scalars().all()
                if stale:
                    await fail_runs(s, stale, RESTART_ERROR)
            if stale:
                log.warning("marked %d unfinished runs as failed after a restart", len(stale))

    @property
    def active_runs(self) -> int:
        return len(self._active)

    async def drain(self, grace_seconds: float) -> None:
        """The server is stopping: no run starts any more; runs in flight have `grace_seconds` to
        finish, then those still going (or awaiting tool outputs) end `failed` now, their streams
        with an `error` event. (kill -9 skips this: the next start fails what was left.)"""
        self._draining = True
        tasks = [ar.task for ar in self._active.values() if ar.task is not None and not ar.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_seconds)
        for ar in list(self._active.values()):
            if ar.task is None:
                await self._end_now(ar.project_id, ar.id, "failed", last_error=SHUTDOWN_ERROR)
            elif not ar.task.done() and not ar.finishing:
                ar.task.cancel()  # `_drive` ends it failed
                await asyncio.wait([ar.task], timeout=CANCEL_GRACE_SECONDS * 2)

    async def stop(self) -> None:
        self._stopping = True
        tasks = [ar.task for ar in self._active.values() if ar.task is not None and not ar.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for ar in list(self._active.values()):
            if ar.expiry is not None:
                ar.expiry.cancel()
        await self.containers.close()
        await self.upstream.aclose()

    # ---- requests --------------------------------------------------------------------------

    async def create_run(self, project_id: str, thread_id: str, body: dict) -> RunHandle:
        return await self._create(project_id, body, thread_id=thread_id)

    async def create_thread_and_run(self, project_id: str, body: dict) -> RunHandle:
        return await self._create(project_id, body, thread_body=body.get("thread") or {})

    async def _create(self, project_id: str, body: dict, thread_id: str | None = None,
                      thread_body: dict | None = None) -> RunHandle:
        if self._draining:
            raise Unavailable("The server is shutting down and starts no new run; retry on another replica or "
                              "once it is back.")
        if thread_id is not None:
            if thread_id in self._starting:
                raise InvalidRequest(f"Thread {thread_id} already has an active run.")
            self._starting.add(thread_id)
        try:
            return await self._create_run(project_id, body, thread_id, thread_body)
        finally:
            self._starting.discard(thread_id)

    async def _create_run(self, project_id: str, body: dict, thread_id: str | None,
                          thread_body: dict | None) -> RunHandle:
        await self.upstream.refresh()
        async with self.db.session() as s:
            c = await s.connection()  # Core statements here; the ORM only to create a thread or messages
            assistant_id = body.get("assistant_id")
            assistant = (await c.execute(ASSISTANT, {"row_id": assistant_id})).one_or_none() if assistant_id else None
            owned(assistant, "assistant", assistant_id, project_id)
            fields = run_fields(assistant, body)
            self.upstream.check(fields["model"])
            thread_dict = None
            if thread_id is None:
                thread = await create_thread(s, project_id, thread_body, param="thread")
                thread_id = thread.id
                thread_dict = thread_to_dict(thread)
            else:
                found = (await c.execute(THREAD_AND_ACTIVE_RUN, {"project_id": project_id, "thread_id": thread_id})
                         ).one_or_none()
                if found is None or found[0] != project_id:
                    raise NotFound("thread", thread_id)
                active = found[1]
                if active:
                    raise InvalidRequest(f"Thread {thread_id} already has an active run {active}.")
                for n, message in enumerate(body.get("additional_messages") or []):
                    await create_message(s, project_id, thread_id, message, param=f"additional_messages[{n}]")
            t = now()
            run = (await c.execute(INSERT_RUN, dict(
                fields, id=new_id("run"), project_id=project_id, thread_id=thread_id, assistant_id=assistant.id,
                status="queued", created_at=t, expires_at=t + self.settings.run_expiry_seconds))).one()
            run_dict = run_to_dict(run)
            here = True  # driven by this replica (its own queue), else by whichever takes it
            target = None  # the replica whose own queue gets the run (None: the shared queue)
            if self.replicas is not None:
                target = await self.replicas.place(c, thread_id, run.id, here=bool(body.get("stream"))
                                                   or not self.queue.shared)
                here = target == self.replicas.id
                if not here:  # its events start here, stored with the run; the replica that takes it goes on
                    await self.replicas.store_first_events(c, run.id, [
                        event("thread.run.created", run_dict), event("thread.run.queued", run_dict)])
            await s.commit()

        prefix = [event("thread.created", thread_dict)] if thread_dict else []
        channel = None
        if here:
            ar = ActiveRun(id=run.id, project_id=project_id, thread_id=thread_id, assistant_id=assistant.id,
                           channel=self._channel(run.id))
            self._active[ar.id] = ar
            ar.publish("thread.run.created", run_dict)
            ar.publish("thread.run.queued", run_dict)
            channel = ar.channel
        else:
            for name in ("thread.run.created", "thread.run.queued"):
                metrics.run_event(name, run_dict)
        try:
            await self.queue.defer(Job("run", run.id, lock=thread_id), target)
        except Exception:
            log.exception("queueing run %s failed", run.id)
            run_dict = await self._end_now(project_id, run.id, "failed", last_error=QUEUE_ERROR)
        return RunHandle(run=run_dict, channel=channel, prefix=prefix, thread=thread_dict)

    async def run_job(self, job: Job) -> None:
        """The queue's job for a run: drive its first leg here (the run is adopted from the
        database when it was created on another replica or its replica was lost)."""
        ar = self._active.get(job.stream_id) or await self._adopt(job.stream_id)
        if ar is None or ar.task is not None:
            return
        ar.task = asyncio.current_task()  # the queue runs each job in a task of its own
        await self._drive(ar, resume=False)

    async def _adopt(self, run_id: str) -> ActiveRun | None:
        """A queued run created elsewhere, now driven here (None if it has ended meanwhile)."""
        async with self.db.session() as s:
            run = await s.get(Run, run_id)
            if run is None or run.status not in ("queued", "cancelling"):
                return None
            ar = ActiveRun(id=run.id, project_id=run.project_id, thread_id=run.thread_id,
                           assistant_id=run.assistant_id)
            if run.status == "queued" and self.replicas is not None:
                await self.replicas.take(await s.connection(), run_id)
                await s.commit()
        if self.events is not None:
            ar.channel = await self.events.continued_channel(run_id)
        self._active[run_id] = ar
        if run.status == "cancelling":  # cancelled while it waited: it ends here, its events stored
            await self._end_now(ar.project_id, run_id, "cancelled")
            return None
        return ar

    async def submit_tool_outputs(self, project_id: str, thread_id: str, run_id: str, body: dict) -> RunHandle:
        ar = self._active.get(run_id)
        # a run another live replica drives: stored here, resumed there (see Replicas)
        elsewhere = await self.replicas.live_owner(run_id) if ar is None and self.replicas is not None else None
        async with self.db.session() as s:
            run = await get_run(s, project_id, thread_id, run_id)
            if run.status != "requires_action" or (ar is None and elsewhere is None):
                raise InvalidRequest(f"Runs in status \"{run.status}\" do not accept tool outputs.")
            if run.expires_at is not None and now() >= run.expires_at:
                raise InvalidRequest("This run has expired and no longer accepts tool outputs.")
            expected = [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]
            outputs = {}
            for item in body.get("tool_outputs") or []:
                call_id = item.get("tool_call_id")
                if call_id not in expected:
                    raise InvalidRequest(f"No tool call with id {call_id!r} is waiting for output in this run.",
                                         param="tool_outputs")
                outputs[call_id] = item.get("output") or ""
            missing = [c for c in expected if c not in outputs]
            if missing:
                raise InvalidRequest(f"Expected tool outputs for call_ids {expected}, got {list(outputs)}.",
                                     param="tool_outputs")
            step = (await s.execute(select(RunStep).where(
                RunStep.run_id == run_id, RunStep.type == "tool_calls", RunStep.status == "in_progress")
                .order_by(RunStep.position.desc()).limit(1))).scalar_one()
            details = {"type": "tool_calls", "tool_calls": []}
            for call in step.step_details["tool_calls"]:
                call = dict(call)
                if call["type"] == "function" and call["id"] in outputs:
                    call["function"] = dict(call["function"], output=outputs[call["id"]])
                details["tool_calls"].append(call)
            step.step_details = details
            step.status = "completed"
            step.completed_at = now()
            run.status = "queued"
            run.required_action = None
            await s.commit()
            step_dict, run_dict = step_to_dict(step), run_to_dict(run)
        if elsewhere:
            start = await self.replicas.request_resume(elsewhere, run_id)
            return RunHandle(run=run_dict, channel=None, start=start)
        self._resume(ar, step_dict, run_dict)
        return RunHandle(run=run_dict, channel=ar.channel)

    async def resume_here(self, run_id: str) -> None:
        """Another replica stored tool outputs for this run (now `queued`): its next leg starts."""
        ar = self._active.get(run_id)
        if ar is None or ar.task is not None:
            return
        async with self.db.session() as s:
            run = await s.get(Run, run_id)
            step = (await s.execute(select(RunStep).where(RunStep.run_id == run_id, RunStep.type == "tool_calls")
                                    .order_by(RunStep.position.desc()).limit(1))).scalar_one()
            if run.status != "queued":
                return
            step_dict, run_dict = step_to_dict(step), run_to_dict(run)
        self._resume(ar, step_dict, run_dict)

    def _resume(self, ar: ActiveRun, step_dict: dict, run_dict: dict) -> None:
        if ar.expiry is not None:
            ar.expiry.cancel()
            ar.expiry = None
        ar.channel = self._channel(ar.id)
        ar.awaiting_outputs_until = None
        ar.publish("thread.run.step.completed", step_dict)
        ar.publish("thread.run.queued", run_dict)
        ar.task = asyncio.create_task(self._drive(ar, resume=True), name=f"run {ar.id}")

    async def cancel_run(self, project_id: str, thread_id: str, run_id: str) -> dict:
        # a run another live replica drives: that replica cancels it (see Replicas)
        elsewhere = (await self.replicas.live_owner(run_id)
                     if run_id not in self._active and self.replicas is not None else None)
        async with self.db.session() as s:
            run = await get_run(s, project_id, thread_id, run_id)
            if run.status == "cancelling":
                return run_to_dict(run)
            if run.status not in ACTIVE_RUN_STATUSES:
                raise InvalidRequest(f"Cannot cancel run with status '{run.status}'.")
            ar = self._active.get(run_id)  # now: its job may have started here meanwhile
            running = ar is not None and ar.task is not None and not ar.task.done()
            if running or elsewhere:
                run.status = "cancelling"
                await s.commit()
                run_dict = run_to_dict(run)
        if elsewhere:
            await self.replicas.request_cancel(elsewhere, run_id)
            return run_dict
        if not running:
            return await self._end_now(project_id, run_id, "cancelled")
        self._cancel_task(ar, run_dict)
        return run_dict

    async def cancel_here(self, run_id: str) -> None:
        """Another replica asked to cancel this run (already `cancelling` in the database)."""
        ar = self._active.get(run_id)
        if ar is None:
            return
        if ar.task is None or ar.task.done():
            await self._end_now(ar.project_id, run_id, "cancelled")
            return
        async with self.db.session() as s:
            run_dict = run_to_dict(await s.get(Run, run_id))
        self._cancel_task(ar, run_dict)

    def _cancel_task(self, ar: ActiveRun, run_dict: dict) -> None:
        ar.publish("thread.run.cancelling", run_dict)
        request_cancel(ar)

    # ---- the run's task --------------------------------------------------------------------

    async def _drive(self, ar: ActiveRun, resume: bool) -> None:
        log_context.set({"run_id": ar.id, "thread_id": ar.thread_id, "project_id": ar.project_id})
        try:
            await RunLeg(ar, self.db, self.containers, self.upstream.client,
                         self.settings.sandbox_exec_timeout_seconds).run()
        except (Cancelled, asyncio.CancelledError):
            ar.finishing = True
            asyncio.current_task().uncancel()
            if self._stopping:
                return  # left as it is: `start()` of the next process ends it as failed
            if ar.executing:
                await interrupt(ar)
            if self._draining and not ar.cancel_requested:
                ar.publish("error", {"error": dict(SHUTDOWN_ERROR, type="server_error", param=None)})
                ar.channel.close()  # streams end with the error; the run's final state is stored below
                await end_run(self.db, ar, "failed", last_error=SHUTDOWN_ERROR)
            else:
                await end_run(self.db, ar, "cancelled")
        except Stopped as stop:
            await end_run(self.db, ar, stop.status, last_error=stop.last_error,
                               incomplete_reason=stop.incomplete_reason)
        except UpstreamError as error:
            code = "rate_limit_exceeded" if getattr(error, "rate_limited", False) else "server_error"
            await end_run(self.db, ar, "failed", last_error={"code": code, "message": f"The model failed: {error}"})
        except Exception as error:
            log.exception("run %s failed", ar.id)
            await end_run(self.db, ar, "failed", last_error={"code": "server_error",
                                                         "message": f"Internal error: {type(error).__name__}"})
        finally:
            ar.channel.close()
            await self._after_leg(ar)

    async def _after_leg(self, ar: ActiveRun) -> None:
        if ar.awaiting_outputs_until is not None and not self._stopping:
            ar.task = None
            if ar.cancel_requested:  # cancelled as the leg ended
                await self._end_now(ar.project_id, ar.id, "cancelled")
                return
            delay = max(0.0, ar.awaiting_outputs_until - time.time())
            ar.expiry = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.create_task(self._expire(ar)))
        else:
            self._active.pop(ar.id, None)
            if self.events is not None:
                self.events.forget(ar.id)

    async def _expire(self, ar: ActiveRun) -> None:
        async with self.db.session() as s:
            status = (await s.execute(select(Run.status).where(Run.id == ar.id))).scalar()
        if status == "requires_action":
            await self._end_now(ar.project_id, ar.id, "expired")

    async def _end_now(self, project_id: str, run_id: str, status: str, last_error: dict | None = None) -> dict:
        """End a run that has no task running (waiting for tool outputs, or orphaned)."""
        ar = self._active.pop(run_id, None)
        if ar is not None and ar.expiry is not None:
            ar.expiry.cancel()
        ar = ar or ActiveRun(id=run_id, project_id=project_id, thread_id="", assistant_id="")
        ar.channel.close()
        if self.events is not None:
            self.events.forget(run_id)
        return await end_run(self.db, ar, status, last_error=last_error)

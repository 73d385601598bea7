"""The Responses engine: creates responses, drives each in its own task on the turn loop,
cancels them and ends those a previous process left unfinished.

The HTTP layer calls `create`, `cancel` and `delete` through `RunWorker`. A response's code runs
in a container (`code_interpreter` tool's `container`: an id, or `auto`, which reuses the
container of the latest code call in the model's context, the `previous_response_id` chain and
then the input, while it is usable, else makes one). What happens is recorded by `ResponsesRecorder`.
"""

import asyncio
import base64
import logging

from codeinterp.config import Settings
from codeinterp.runs import prompt
from codeinterp.runs.cancelling import CANCEL_GRACE_SECONDS, interrupt, request_cancel
from codeinterp.runs.responses_input import chat_messages, input_items
from codeinterp.runs.responses_run import END_EVENTS, ActiveResponse, ResponsesRecorder
from codeinterp.runs.run_queue import InProcessQueue, Job, RunQueue
from codeinterp.runs.turn_loop import Cancelled, Stopped, TurnLoop, TurnParameters
from codeinterp.runs.upstream_model import UpstreamModel
from codeinterp.store import files as file_store
from codeinterp.store import responses as store
from codeinterp.store.db import Database
from codeinterp.store.errors import InvalidRequest, Unavailable
from codeinterp.store.ids import new_id, now
from codeinterp.upstream.client import UpstreamError

log = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 10.0  # a cancel sent to another replica: how long the request waits for the end
CANCEL_POLL_SECONDS = 0.2
MAX_INPUT_IMAGE_BYTES = 20 * 1024 * 1024
SHUTDOWN_ERROR = {"code": "server_error",
                  "message": "The server was shut down or restarted while this response was in progress, "
                             "so it was stopped."}
RESTART_ERROR = {"code": "server_error",
                 "message": "The server restarted while this response was in progress, so it was stopped."}
QUEUE_ERROR = {"code": "server_error",
               "message": "The response could not be queued (the database failed); create it again."}


def parameters(body: dict) -> TurnParameters:
    """The request's settings as the turn loop takes them."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice["name"]}}
        elif choice.get("type") != "code_interpreter":
            choice = "auto"
    fmt = ((body.get("text") or {}).get("format") or {})
    response_format = None
    if fmt.get("type") == "json_object":
        response_format = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        response_format = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    return TurnParameters(
        model=body["model"], has_code=any(t["type"] == "code_interpreter" for t in tools),
        functions=[{k: t.get(k) for k in ("name", "description", "parameters", "strict")}
                   for t in tools if t["type"] == "function"],
        tool_choice=choice, parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        temperature=body.get("temperature"), top_p=body.get("top_p"),
        max_completion_tokens=body.get("max_output_tokens"), response_format=response_format,
        max_code_calls=body.get("max_tool_calls"))


def _instructions_text(instructions) -> str:
    if isinstance(instructions, str):
        return instructions
    items, _ = input_items(instructions or [])
    return "\n".join(p.get("text", "") for item in items if item["type"] == "message" for p in item["content"])


class ResponseEngine:
    def __init__(self, db: Database, containers, upstream: UpstreamModel, settings: Settings) -> None:
        self.db = db
        self.containers = containers
        self.upstream = upstream
        self.settings = settings
        self._active: dict[str, ActiveResponse] = {}
        self._stopping = False
        self._draining = False
        self.events = None  # EventWriter with several replicas (events stored), else None
        self.replicas = None  # Replicas with several replicas (who drives which response), else None
        self.queue: RunQueue = InProcessQueue()  # where responses wait to be driven (set by RunWorker)
        self._inputs: dict[str, tuple[dict, list, dict[str, str]]] = {}  # a response's until its job starts

    async def start(self, fail_unfinished: bool = True) -> None:
        """Responses a previous process left unfinished end `failed` (with several replicas,
        `Replicas` ends those of replicas that are gone instead)."""
        if not fail_unfinished:
            return
        async with self.db.transaction() as c:
            failed = await store.fail_unfinished(c, RESTART_ERROR)
        if failed:
            log.warning("marked %d unfinished responses as failed after a restart", failed)

    async def drain(self, grace_seconds: float) -> None:
        """The server is stopping: no response starts any more; those in flight have
        `grace_seconds` to finish, then those still going end `failed` (see RunEngine.drain)."""
        self._draining = True
        tasks = [ar.task for ar in self._active.values() if ar.task is not None and not ar.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_seconds)
        for ar in list(self._active.values()):
            if ar.task is None:  # its job never started (the queue takes no more)
                self._inputs.pop(ar.id, None)
                await self._end(ar, None, "failed", error=SHUTDOWN_ERROR)
                self._forget(ar)
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

    # ---- requests ------------------------------------------------------------------------------

    async def create(self, project_id: str, body: dict) -> ActiveResponse:
        """Store the response and start it; the caller streams its channel or waits for `done`."""
        if self._draining:
            raise Unavailable("The server is shutting down and starts no new response; retry on another replica "
                              "or once it is back.")
        if body.get("background") and body.get("store") is False:
            raise InvalidRequest("background responses must be stored: `store` cannot be false.", param="store")
        await self.upstream.check_model(body["model"])
        items, files = input_items(body.get("input"))
        history: list[tuple[dict, str | None]] = []
        async with self.db.session() as s:
            earlier = await store.chain(s, project_id, body["previous_response_id"]) \
                if body.get("previous_response_id") else []
            if earlier:
                history = [(r.data, r.model_text) for r in await store.items_of(s, [r.id for r in earlier])]
            # Code calls sent back without their outputs (frameworks that keep the history): the
            # model reads what it read when the call ran here.
            results = await store.code_call_results(s, project_id, {
                i["id"]: i["code"] for i in items if i["type"] == "code_interpreter_call" and i.get("outputs") is None})
        inputs = [(item, results.get(item["id"])) for item in items]
        tools = body.get("tools") or []
        code_tool = next((t for t in tools if t["type"] == "code_interpreter"), None)
        container_id, executor, file_paths = None, None, {}
        if code_tool is not None:
            container_id, executor = await self._container(project_id, code_tool["container"], history + inputs)
            for f in files:  # input_file parts: the file goes into the container, the model is told where
                added = await self.containers.add_file(project_id, container_id, file_id=f.file_id)
                file_paths[f.file_id] = added["path"].removeprefix("/mnt/data/")
        t = now()
        row = store.Response(
            id=new_id("resp"), project_id=project_id, status="queued" if body.get("background") else "in_progress",
            model=body["model"], created_at=t, instructions=body.get("instructions"), tools=tools,
            tool_choice=body.get("tool_choice") or "auto",
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            temperature=body.get("temperature"), top_p=body.get("top_p"),
            max_output_tokens=body.get("max_output_tokens"), max_tool_calls=body.get("max_tool_calls"),
            text=body.get("text"),
            metadata_=body.get("metadata") or {},
            previous_response_id=body.get("previous_response_id"), container_id=container_id,
            store=body.get("store") is not False, background=bool(body.get("background")))
        async with self.db.transaction() as c:
            await store.add_response(c, row)
            await store.add_items(c, row.id, "input", inputs)
            if self.replicas is not None:
                await self.replicas.own(c, row.id)
        ar = ActiveResponse(id=row.id, project_id=project_id, row=row, include=set(body.get("include") or []),
                            container_id=container_id, executor=executor)
        if self.events is not None and row.store:  # a response not stored leaves no events either
            ar.channel = self.events.channel(ar.id, END_EVENTS)
        self._active[ar.id] = ar
        ar.emit("response.created", response=ar.as_dict())
        if row.background:
            ar.emit("response.queued", response=ar.as_dict())
        self._inputs[ar.id] = (body, history + inputs, file_paths)
        try:  # its inputs are in this process's memory: its job is for this replica's own queue
            await self.queue.defer(Job("response", ar.id), self.replicas.id if self.replicas else None)
        except Exception:
            log.exception("queueing response %s failed", ar.id)
            self._inputs.pop(ar.id, None)
            await self._end(ar, None, "failed", error=QUEUE_ERROR)
            self._forget(ar)
        return ar

    async def response_job(self, job: Job) -> None:
        """The queue's job for a response: drive it here. Its inputs are in the memory of the
        replica that created it: a job that came from a lost replica ends the response failed."""
        ar = self._active.get(job.stream_id)
        inputs = self._inputs.pop(job.stream_id, None)
        if ar is None or inputs is None:
            if self.replicas is not None:
                await self.replicas.fail_lost(job.stream_id)
            return
        ar.task = asyncio.current_task()  # the queue runs each job in a task of its own
        await self._drive(ar, *inputs)

    async def _container(self, project_id: str, container: str | dict, history: list) -> tuple[str, object]:
        """The id of the container the response's code runs in (checked now, not mid-response),
        and its code executor when already made: `auto` reuses the container of the latest code
        call in the model's context (the chain's items, then the input's, which frameworks that
        keep the history send back) while usable."""
        if isinstance(container, str):
            return container, await self.containers.executor(project_id, container)  # unknown: 404; expired: 400
        for data, _ in reversed(history):
            if data["type"] == "code_interpreter_call" and data.get("container_id"):
                if await self.containers.usable(project_id, data["container_id"]):
                    for file_id in container.get("file_ids") or []:
                        await self.containers.add_file(project_id, data["container_id"], file_id=file_id)
                    return data["container_id"], None
                break
        return await self.containers.create_auto(project_id, list(container.get("file_ids") or []),
                                                 container.get("memory_limit")), None

    def active(self, project_id: str, response_id: str, include: set[str]) -> dict | None:
        """The response as it stands now, if it is going on here (its rows are written when it ends)."""
        ar = self._active.get(response_id)
        if ar is None or ar.project_id != project_id:
            return None
        return store.response_to_dict(ar.row, ar.output, include)

    def channel(self, project_id: str, response_id: str):
        """The response's event channel, if it is going on here."""
        ar = self._active.get(response_id)
        return ar.channel if ar is not None and ar.project_id == project_id else None

    async def cancel(self, project_id: str, response_id: str) -> dict:
        ar = self._active.get(response_id)
        if ar is None or ar.project_id != project_id:
            async with self.db.session() as s:
                row = await store.get_response(s, project_id, response_id)
                if not row.background:
                    raise InvalidRequest("Only responses created with background=true can be cancelled.")
            if self.replicas is not None and row.status in store.ACTIVE_STATUSES:
                await self._cancel_elsewhere(response_id)
            async with self.db.session() as s:
                return await store.response_with_output(s, project_id, response_id)
        request_cancel(ar)
        await ar.done.wait()
        return ar.as_dict()

    async def _cancel_elsewhere(self, response_id: str) -> None:
        """Ask the live replica driving the response to cancel it, and wait (a while) until it has."""
        owner = await self.replicas.live_owner(response_id)
        if owner is None:
            return
        await self.replicas.request_cancel(owner, response_id)
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            async with self.db.session() as s:
                status = await store.status_of(s, response_id)
            if status not in store.ACTIVE_STATUSES:
                return
            await asyncio.sleep(CANCEL_POLL_SECONDS)

    async def cancel_here(self, response_id: str) -> None:
        """Another replica asked to cancel this response."""
        ar = self._active.get(response_id)
        if ar is not None:
            await self.cancel(ar.project_id, response_id)

    async def delete(self, project_id: str, response_id: str) -> None:
        ar = self._active.get(response_id)
        if ar is not None and ar.project_id == project_id:
            await self.cancel(project_id, response_id)
        async with self.db.session() as s:
            await store.delete_response(s, project_id, response_id)
            await s.commit()

    # ---- the response's task -------------------------------------------------------------------

    async def _messages(self, ar: ActiveResponse, body: dict, items: list, file_paths: dict[str, str],
                        executor) -> list[dict]:
        """The chat: instructions and the container's files, then the chain's items and the input."""
        files = dict(await executor.files()) if executor is not None else {}
        system = "\n\n".join(p for p in (
            _instructions_text(body.get("instructions")),
            prompt.files_listing(sorted(files), self.settings.prompt_max_files)) if p)
        messages = [{"role": "system", "content": system}] if system else []
        return messages + chat_messages(items, await self._input_images(ar.project_id, items), file_paths)

    async def _input_images(self, project_id: str, items: list) -> dict[str, str]:
        """file id -> data URL of every input image given by file id."""
        ids = {p["file_id"] for data, _ in items if data["type"] == "message"
               for p in data["content"] if p["type"] == "input_image" and p.get("file_id")}
        urls = {}
        for file_id in ids:
            async with self.db.session() as s:
                source = await file_store.content_source(s, project_id, file_id)
            if source is None or source.size > MAX_INPUT_IMAGE_BYTES:
                continue
            data = b"".join([chunk async for chunk in source.chunks()])
            urls[file_id] = "data:image/png;base64," + base64.b64encode(data).decode()
        return urls

    async def _drive(self, ar: ActiveResponse, body: dict, items: list, file_paths: dict[str, str]) -> None:
        recorder = None
        try:
            executor = ar.executor
            if executor is None and ar.container_id:
                executor = await self.containers.executor(ar.project_id, ar.container_id)

            async def container_files() -> dict[str, str]:
                return dict(await executor.files()) if executor is not None else {}

            recorder = ResponsesRecorder(ar, container_files)
            ar.turn = TurnLoop(self.upstream.client, parameters(body), executor, recorder,
                               exec_timeout=self.settings.sandbox_exec_timeout_seconds,
                               cancelled=lambda: ar.cancel_requested)
            ar.turn.prepare_executor()  # the container's session starts while the model thinks
            messages = await self._messages(ar, body, items, file_paths, executor)
            ar.row.status = "in_progress"
            if ar.row.background:
                async with self.db.transaction() as c:
                    await store.finish(c, ar.id, status="in_progress")
            ar.emit("response.in_progress", response=ar.as_dict())
            outcome = await ar.turn.run(messages)
            await self._finish(ar, "completed", usage=outcome.usage | ar.turn.usage_details)
        except (Cancelled, asyncio.CancelledError):
            ar.finishing = True
            asyncio.current_task().uncancel()
            if self._stopping:
                return
            if ar.executing:
                await interrupt(ar)
            if self._draining and not ar.cancel_requested:
                await self._end(ar, recorder, "failed", error=SHUTDOWN_ERROR)
            else:
                await self._end(ar, recorder, "cancelled")
        except Stopped as stop:
            error = stop.last_error if stop.status == "failed" else None
            status = "incomplete" if stop.status in ("incomplete", "expired") else "failed"
            await self._end(ar, recorder, status, error=error,
                            incomplete={"reason": "max_output_tokens"} if status == "incomplete" else None)
        except UpstreamError as error:
            code = "rate_limit_exceeded" if getattr(error, "rate_limited", False) else "server_error"
            await self._end(ar, recorder, "failed", error={"code": code, "message": f"The model failed: {error}"})
        except Exception as error:
            log.exception("response %s failed", ar.id)
            await self._end(ar, recorder, "failed",
                            error={"code": "server_error", "message": f"Internal error: {type(error).__name__}"})
        finally:
            self._forget(ar)

    def _forget(self, ar: ActiveResponse) -> None:
        """The response has ended here."""
        ar.channel.close()
        self._active.pop(ar.id, None)
        if self.events is not None:
            self.events.forget(ar.id)
        ar.done.set()

    async def _end(self, ar: ActiveResponse, recorder: ResponsesRecorder | None, status: str,
                   error: dict | None = None, incomplete: dict | None = None) -> None:
        if recorder is not None:
            try:
                await recorder.close_open_items()
            except Exception:
                log.exception("closing the items of response %s failed", ar.id)
        await self._finish(ar, status, usage=ar.turn.usage | ar.turn.usage_details if ar.turn else None, error=error,
                           incomplete=incomplete)

    async def _finish(self, ar: ActiveResponse, status: str, usage: dict | None = None, error: dict | None = None,
                      incomplete: dict | None = None) -> None:
        values = {"status": status, "usage": dict(usage) if usage else None, "error": error,
                  "incomplete_details": incomplete, "completed_at": now() if status == "completed" else None}
        async with self.db.transaction() as c:
            if ar.row.store:
                await store.finish(c, ar.id, **values)
                await store.add_items(c, ar.id, "output", [(item, ar.model_texts.get(item["id"]))
                                                           for item in ar.output])
            else:
                await store.forget(c, ar.id)
        for key, value in values.items():
            setattr(ar.row, key, value)
        if status in ("completed", "failed", "incomplete"):
            ar.emit(f"response.{status}", response=ar.as_dict())


"""Runs, run steps and thread-and-run, as JSON or as server-sent events (`stream=true`)."""

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session, run_worker
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.runs import (
    CreateRunRequest, CreateThreadAndRunRequest, ListRunsResponse, ListRunStepsResponse, ModifyRunRequest,
    RunObject, RunStepObject, SubmitToolOutputsRunRequest,
)
from codeinterp.logs import add_to_context
from codeinterp.runs.engine import RunHandle
from codeinterp.runs.events import LEG_END_EVENTS
from codeinterp.runs.worker import RunWorker
from codeinterp.store import runs as service
from codeinterp.store.runs import ACTIVE_RUN_STATUSES, run_to_dict, step_to_dict
from codeinterp.store.threads import get_thread

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["Assistants"])

POLL_AFTER_MS = "200"


def run_response(run: dict) -> JSONResponse:
    """A run object with the polling hint the SDKs' `*_and_poll` helpers read."""
    add_to_context(run_id=run["id"], thread_id=run["thread_id"])
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if run["status"] in ACTIVE_RUN_STATUSES else {}
    return JSONResponse(RunObject.model_validate(run).model_dump(mode="json", exclude_unset=True),
                        headers=headers)


def sse_response(handle: RunHandle) -> StreamingResponse:
    add_to_context(run_id=handle.run["id"], thread_id=handle.run["thread_id"])
    return StreamingResponse(sse_stream(handle.events()), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def sse_stream(batches: AsyncIterator[list[tuple[str, str]]], done: bool = True) -> AsyncIterator[str]:
    """Server-sent events from batches of (name, JSON text); `done` ends with the `[DONE]` event."""
    try:
        async for batch in batches:
            yield "".join(f"event: {name}\ndata: {data}\n\n" for name, data in batch)
    except Exception:
        log.exception("streaming a run failed")
        error = {"error": {"message": "The server failed while streaming this run.", "type": "server_error",
                           "param": None, "code": None}}
        yield f"event: error\ndata: {json.dumps(error)}\n\n"
    if done:
        yield "event: done\ndata: [DONE]\n\n"


def _body(model) -> dict:
    return model.model_dump(mode="json", exclude_unset=True)


@router.post("/threads/runs", response_model=RunObject)
async def create_thread_and_run(body: CreateThreadAndRunRequest, project_id: str = Depends(current_project),
                                worker: RunWorker = Depends(run_worker)):
    data = _body(body)
    if data.get("tool_resources") is not None:
        thread = dict(data.get("thread") or {})
        thread.setdefault("tool_resources", data["tool_resources"])
        data["thread"] = thread
    handle = await worker.create_thread_and_run(project_id, data)
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.post("/threads/{thread_id}/runs", response_model=RunObject)
async def create_run(thread_id: str, body: CreateRunRequest, project_id: str = Depends(current_project),
                     worker: RunWorker = Depends(run_worker)):
    handle = await worker.create_run(project_id, thread_id, _body(body))
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.get("/threads/{thread_id}/runs", response_model=ListRunsResponse, response_model_exclude_unset=True)
async def list_runs(thread_id: str, query: ListQuery = Depends(ListQuery),
                    project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    await get_thread(session, project_id, thread_id)
    return await service.list_runs(session, project_id, thread_id, query)


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunObject)
async def retrieve_run(request: Request, thread_id: str, run_id: str, project_id: str = Depends(current_project)):
    return run_response(await service.read_run(request.app.state.database, project_id, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}", response_model=RunObject)
async def modify_run(thread_id: str, run_id: str, body: ModifyRunRequest,
                     project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    run = await service.update_run(session, project_id, thread_id, run_id, _body(body))
    await session.commit()
    return run_response(run_to_dict(run))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=RunObject)
async def cancel_run(thread_id: str, run_id: str, project_id: str = Depends(current_project),
                     worker: RunWorker = Depends(run_worker)):
    return run_response(await worker.cancel_run(project_id, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=RunObject)
async def submit_tool_outputs(request: Request, thread_id: str, run_id: str, body: SubmitToolOutputsRunRequest,
                              project_id: str = Depends(current_project), worker: RunWorker = Depends(run_worker)):
    handle = await worker.submit_tool_outputs(project_id, thread_id, run_id, _body(body))
    if handle.channel is None:  # the run goes on on the replica that drives it
        handle.channel = request.app.state.event_follower.stream(
            run_id, LEG_END_EVENTS, going_on=lambda: service.is_going_on(request.app.state.database, run_id))
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=ListRunStepsResponse,
            response_model_exclude_unset=True)
async def list_run_steps(thread_id: str, run_id: str, query: ListQuery = Depends(ListQuery),
                         project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    return await service.list_run_steps(session, project_id, thread_id, run_id, query)


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=RunStepObject,
            response_model_exclude_unset=True)
async def retrieve_run_step(thread_id: str, run_id: str, step_id: str, project_id: str = Depends(current_project),
                            session: AsyncSession = Depends(db_session)):
    return step_to_dict(await service.get_run_step(session, project_id, thread_id, run_id, step_id))

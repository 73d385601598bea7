"""Runs, run steps and thread-and-run, as JSON or as server-sent events (`stream=true`)."""

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.errors import not_found
from codeinterp.api.pagination import ListQuery, paginate
from codeinterp.api.schemas.runs import (
    CreateRunRequest, CreateThreadAndRunRequest, ListRunsResponse, ListRunStepsResponse, ModifyRunRequest,
    RunObject, RunStepObject, SubmitToolOutputsRunRequest,
)
from codeinterp.runs.engine import RunHandle
from codeinterp.runs.worker import RunWorker
from codeinterp.store.assistants import Thread
from codeinterp.store.runs import ACTIVE_RUN_STATUSES, RUN_COLUMNS, Run, RunStep, run_to_dict, step_to_dict

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["Assistants"])

POLL_AFTER_MS = "200"


def engine(request: Request) -> RunWorker:
    return request.app.state.run_worker


def run_response(run: dict) -> JSONResponse:
    """A run object with the polling hint the SDKs' `*_and_poll` helpers read."""
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if run["status"] in ACTIVE_RUN_STATUSES else {}
    return JSONResponse(RunObject.model_validate(run).model_dump(mode="json", exclude_unset=True),
                        headers=headers)


def sse_response(handle: RunHandle) -> StreamingResponse:
    return StreamingResponse(_sse(handle.events()), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _sse(batches: AsyncIterator[list[tuple[str, str]]]) -> AsyncIterator[str]:
    try:
        async for batch in batches:
            yield "".join(f"event: {name}\ndata: {data}\n\n" for name, data in batch)
    except Exception:
        log.exception("streaming a run failed")
        error = {"error": {"message": "The server failed while streaming this run.", "type": "server_error",
                           "param": None, "code": None}}
        yield f"event: error\ndata: {json.dumps(error)}\n\n"
    yield "event: done\ndata: [DONE]\n\n"


def _body(model) -> dict:
    return model.model_dump(mode="json", exclude_unset=True)


async def _thread_exists(session: AsyncSession, project_id: str, thread_id: str) -> None:
    thread = await session.get(Thread, thread_id)
    if thread is None or thread.project_id != project_id:
        raise not_found("thread", thread_id)


def _owned(run, project_id: str, thread_id: str, run_id: str):
    """The run (an object or a row), if it is the project's and the thread's; else 404."""
    if run is None or run.project_id != project_id or run.thread_id != thread_id:
        raise not_found("run", run_id)
    return run


async def _run_row(session: AsyncSession, project_id: str, thread_id: str, run_id: str) -> Run:
    return _owned(await session.get(Run, run_id), project_id, thread_id, run_id)


@router.post("/threads/runs", response_model=RunObject)
async def create_thread_and_run(body: CreateThreadAndRunRequest, project_id: str = Depends(current_project),
                                engine: RunWorker = Depends(engine)):
    data = _body(body)
    if data.get("tool_resources") is not None:
        thread = dict(data.get("thread") or {})
        thread.setdefault("tool_resources", data["tool_resources"])
        data["thread"] = thread
    handle = await engine.create_thread_and_run(project_id, data)
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.post("/threads/{thread_id}/runs", response_model=RunObject)
async def create_run(thread_id: str, body: CreateRunRequest, project_id: str = Depends(current_project),
                     engine: RunWorker = Depends(engine)):
    handle = await engine.create_run(project_id, thread_id, _body(body))
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.get("/threads/{thread_id}/runs", response_model=ListRunsResponse, response_model_exclude_unset=True)
async def list_runs(thread_id: str, query: ListQuery = Depends(ListQuery),
                    project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    await _thread_exists(session, project_id, thread_id)
    stmt = select(Run).where(Run.project_id == project_id, Run.thread_id == thread_id)
    return await paginate(session, stmt, Run, query, run_to_dict, order_column=Run.sequence)


# What pollers ask for again and again: one statement, no ORM session.
RUN_BY_ID = select(*RUN_COLUMNS).where(Run.id == bindparam("run_id"))


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunObject)
async def retrieve_run(request: Request, thread_id: str, run_id: str, project_id: str = Depends(current_project)):
    async with request.app.state.database.transaction() as c:
        run = (await c.execute(RUN_BY_ID, {"run_id": run_id})).one_or_none()
    return run_response(run_to_dict(_owned(run, project_id, thread_id, run_id)))


@router.post("/threads/{thread_id}/runs/{run_id}", response_model=RunObject)
async def modify_run(thread_id: str, run_id: str, body: ModifyRunRequest,
                     project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    run = await _run_row(session, project_id, thread_id, run_id)
    if body.metadata is not None:
        run.metadata_ = body.metadata
    await session.commit()
    return run_response(run_to_dict(run))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=RunObject)
async def cancel_run(thread_id: str, run_id: str, project_id: str = Depends(current_project),
                     engine: RunWorker = Depends(engine)):
    return run_response(await engine.cancel_run(project_id, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=RunObject)
async def submit_tool_outputs(thread_id: str, run_id: str, body: SubmitToolOutputsRunRequest,
                              project_id: str = Depends(current_project), engine: RunWorker = Depends(engine)):
    handle = await engine.submit_tool_outputs(project_id, thread_id, run_id, _body(body))
    return sse_response(handle) if body.stream else run_response(handle.run)


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=ListRunStepsResponse,
            response_model_exclude_unset=True)
async def list_run_steps(thread_id: str, run_id: str, query: ListQuery = Depends(ListQuery),
                         project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)):
    await _run_row(session, project_id, thread_id, run_id)
    stmt = select(RunStep).where(RunStep.project_id == project_id, RunStep.run_id == run_id)
    return await paginate(session, stmt, RunStep, query, step_to_dict, order_column=RunStep.position)


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=RunStepObject,
            response_model_exclude_unset=True)
async def retrieve_run_step(thread_id: str, run_id: str, step_id: str, project_id: str = Depends(current_project),
                            session: AsyncSession = Depends(db_session)):
    await _run_row(session, project_id, thread_id, run_id)
    step = await session.get(RunStep, step_id)
    if step is None or step.project_id != project_id or step.run_id != run_id:
        raise not_found("run step", step_id)
    return step_to_dict(step)

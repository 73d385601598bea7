"""/v1/responses: create (JSON, `stream`, `background`), retrieve, delete, cancel, input_items."""

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session, run_worker
from codeinterp.api.pagination import ListQuery
from codeinterp.api.runs import sse_stream
from codeinterp.api.schemas.responses import CreateResponseBody, DeletedResponse, ResponseItemList
from codeinterp.runs.responses_run import END_EVENTS
from codeinterp.runs.worker import RunWorker
from codeinterp.store.errors import InvalidRequest
from codeinterp.store import responses as service

router = APIRouter(prefix="/v1/responses", tags=["Responses"])

Include = Query(None, alias="include[]")


def _include(include: list[str] | None, plain: list[str] | None) -> set[str]:
    return set(include or []) | set(plain or [])


@router.post("", operation_id="CreateResponse")
async def create_response(body: CreateResponseBody, project_id: str = Depends(current_project),
                          worker: RunWorker = Depends(run_worker)):
    active = await worker.create_response(project_id, body.model_dump(mode="json", exclude_unset=False))
    if body.stream:
        return StreamingResponse(sse_stream(active.channel.subscribe(), done=False), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    if body.background:
        return JSONResponse(active.as_dict())
    return JSONResponse(await worker.wait_response(active))


@router.get("/{response_id}", operation_id="GetResponse")
async def retrieve_response(request: Request, response_id: str, include: list[str] | None = Include,
                            include_plain: list[str] | None = Query(None, alias="include"),
                            stream: bool = False, starting_after: int | None = Query(None, ge=-1),
                            project_id: str = Depends(current_project), worker: RunWorker = Depends(run_worker),
                            session: AsyncSession = Depends(db_session)):
    include = _include(include, include_plain)
    if stream:
        start = 0 if starting_after is None else starting_after + 1
        channel = await worker.response_channel(project_id, response_id)
        follower = request.app.state.event_follower
        if channel is not None:
            batches = channel.subscribe(start)
        elif follower is not None:
            await service.get_response(session, project_id, response_id)  # 404 unless the project's
            batches = follower.follow(response_id, start, END_EVENTS,
                                      going_on=lambda: service.is_going_on(request.app.state.database, response_id))
        else:
            await service.get_response(session, project_id, response_id)
            raise InvalidRequest(f"Response {response_id} is not in progress: retrieve it without `stream`.",
                                 param="stream")
        return StreamingResponse(sse_stream(batches, done=False), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    going_on = await worker.active_response(project_id, response_id, include)
    if going_on is not None:
        return JSONResponse(going_on)
    return JSONResponse(await service.response_with_output(session, project_id, response_id, include))


@router.delete("/{response_id}", operation_id="DeleteResponse", response_model=DeletedResponse)
async def delete_response(response_id: str, project_id: str = Depends(current_project),
                          worker: RunWorker = Depends(run_worker)) -> dict:
    await worker.delete_response(project_id, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


@router.post("/{response_id}/cancel", operation_id="CancelResponse")
async def cancel_response(response_id: str, project_id: str = Depends(current_project),
                          worker: RunWorker = Depends(run_worker)):
    return JSONResponse(await worker.cancel_response(project_id, response_id))


@router.get("/{response_id}/input_items", operation_id="ListInputItems", response_model=ResponseItemList)
async def list_input_items(response_id: str, query: ListQuery = Depends(ListQuery),
                           include: list[str] | None = Include,
                           include_plain: list[str] | None = Query(None, alias="include"),
                           project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    return await service.list_input_items(session, project_id, response_id, query, _include(include, include_plain))


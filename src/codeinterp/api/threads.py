"""/v1/threads: create (with messages), retrieve, modify, delete."""

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.schemas.threads import (
    CreateThreadRequest, DeleteThreadResponse, ModifyThreadRequest, ThreadObject,
)
from codeinterp.store.assistants import (
    Thread, create_thread, delete_thread, get_owned, thread_to_dict, update_thread,
)

router = APIRouter(prefix="/v1/threads", tags=["Assistants"])


@router.post("", operation_id="createThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def create_thread_endpoint(body: CreateThreadRequest | None = None,
                                 project_id: str = Depends(current_project),
                                 session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True) if body else {}
    return thread_to_dict(await create_thread(session, project_id, fields))


@router.get("/{thread_id}", operation_id="getThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def retrieve_thread(thread_id: str, project_id: str = Depends(current_project),
                          session: AsyncSession = Depends(db_session)) -> dict:
    return thread_to_dict(await get_owned(session, Thread, project_id, thread_id, "thread"))


@router.post("/{thread_id}", operation_id="modifyThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def modify_thread(thread_id: str, body: ModifyThreadRequest, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    return thread_to_dict(await update_thread(session, project_id, thread_id, fields))


@router.delete("/{thread_id}", operation_id="deleteThread", response_model=DeleteThreadResponse)
async def delete_thread_endpoint(request: Request, thread_id: str, project_id: str = Depends(current_project),
                                 session: AsyncSession = Depends(db_session)) -> dict:
    await delete_thread(session, project_id, thread_id)
    await session.commit()
    await request.app.state.run_worker.thread_deleted(project_id, thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}

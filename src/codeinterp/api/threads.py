"""/v1/threads: create (with messages), retrieve, modify, delete."""

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session, run_worker
from codeinterp.api.schemas.threads import (
    CreateThreadRequest, DeleteThreadResponse, ModifyThreadRequest, ThreadObject,
)
from codeinterp.runs.worker import RunWorker
from codeinterp.store import threads as service
from codeinterp.store.threads import thread_to_dict

router = APIRouter(prefix="/v1/threads", tags=["Assistants"])


@router.post("", operation_id="createThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def create_thread(body: CreateThreadRequest | None = None, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True) if body else {}
    return thread_to_dict(await service.create_thread(session, project_id, fields))


@router.get("/{thread_id}", operation_id="getThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def retrieve_thread(thread_id: str, project_id: str = Depends(current_project),
                          session: AsyncSession = Depends(db_session)) -> dict:
    return thread_to_dict(await service.get_thread(session, project_id, thread_id))


@router.post("/{thread_id}", operation_id="modifyThread", response_model=ThreadObject, response_model_exclude_unset=True)
async def modify_thread(thread_id: str, body: ModifyThreadRequest, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    return thread_to_dict(await service.update_thread(session, project_id, thread_id, fields))


@router.delete("/{thread_id}", operation_id="deleteThread", response_model=DeleteThreadResponse)
async def delete_thread(thread_id: str, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session),
                        worker: RunWorker = Depends(run_worker)) -> dict:
    await service.delete_thread(session, project_id, thread_id)
    await session.commit()
    await worker.thread_deleted(project_id, thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}

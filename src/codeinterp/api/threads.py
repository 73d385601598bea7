"""/v1/threads: create (with messages), retrieve, modify, delete."""

from fastapi import APIRouter, Depends
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.schemas.threads import (
    CreateThreadRequest, DeleteThreadResponse, ModifyThreadRequest, ThreadObject,
)
from codeinterp.store.assistants import (
    Message, Thread, check_metadata, check_tool_resources, create_thread, get_owned, thread_to_dict,
)

router = APIRouter(prefix="/v1/threads", tags=["Assistants"])


@router.post("", response_model=ThreadObject)
async def create_thread_endpoint(body: CreateThreadRequest | None = None,
                                 project_id: str = Depends(current_project),
                                 session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True) if body else {}
    return thread_to_dict(await create_thread(session, project_id, fields))


@router.get("/{thread_id}", response_model=ThreadObject)
async def retrieve_thread(thread_id: str, project_id: str = Depends(current_project),
                          session: AsyncSession = Depends(db_session)) -> dict:
    return thread_to_dict(await get_owned(session, Thread, project_id, thread_id, "thread"))


@router.post("/{thread_id}", response_model=ThreadObject)
async def modify_thread(thread_id: str, body: ModifyThreadRequest, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_owned(session, Thread, project_id, thread_id, "thread")
    fields = body.model_dump(exclude_unset=True)
    if "tool_resources" in fields:
        row.tool_resources = await check_tool_resources(session, project_id, fields["tool_resources"])
    if "metadata" in fields:
        row.metadata_ = check_metadata(fields["metadata"])
    await session.flush()
    return thread_to_dict(row)


@router.delete("/{thread_id}", response_model=DeleteThreadResponse)
async def delete_thread(thread_id: str, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_owned(session, Thread, project_id, thread_id, "thread")
    await session.execute(delete(Message).where(Message.project_id == project_id, Message.thread_id == thread_id))
    await session.delete(row)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}

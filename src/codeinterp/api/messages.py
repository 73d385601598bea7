"""/v1/threads/{thread_id}/messages: create, list, retrieve, modify, delete."""

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.pagination import ListQuery, paginate
from codeinterp.api.schemas.messages import (
    CreateMessageRequest, DeleteMessageResponse, ListMessagesResponse, MessageObject, ModifyMessageRequest,
)
from codeinterp.store.assistants import (
    Message, Thread, check_metadata, create_message, get_message, get_owned, message_to_dict,
)

router = APIRouter(prefix="/v1/threads/{thread_id}/messages", tags=["Assistants"])


@router.post("", operation_id="createMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def create_message_endpoint(thread_id: str, body: CreateMessageRequest,
                                  project_id: str = Depends(current_project),
                                  session: AsyncSession = Depends(db_session)) -> dict:
    return message_to_dict(await create_message(session, project_id, thread_id, body.model_dump(exclude_unset=True)))


@router.get("", operation_id="listMessages", response_model=ListMessagesResponse, response_model_exclude_unset=True)
async def list_messages(thread_id: str, run_id: str | None = Query(None, max_length=256),
                        query: ListQuery = Depends(ListQuery), project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    await get_owned(session, Thread, project_id, thread_id, "thread")
    stmt = select(Message).where(Message.project_id == project_id, Message.thread_id == thread_id)
    if run_id is not None:
        stmt = stmt.where(Message.run_id == run_id)
    return await paginate(session, stmt, Message, query, message_to_dict, order_column=Message.sequence)


@router.get("/{message_id}", operation_id="getMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def retrieve_message(thread_id: str, message_id: str, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    return message_to_dict(await get_message(session, project_id, thread_id, message_id))


@router.post("/{message_id}", operation_id="modifyMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def modify_message(thread_id: str, message_id: str, body: ModifyMessageRequest,
                         project_id: str = Depends(current_project),
                         session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_message(session, project_id, thread_id, message_id)
    if "metadata" in body.model_fields_set:
        row.metadata_ = check_metadata(body.metadata)
    await session.flush()
    return message_to_dict(row)


@router.delete("/{message_id}", operation_id="deleteMessage", response_model=DeleteMessageResponse)
async def delete_message(thread_id: str, message_id: str, project_id: str = Depends(current_project),
                         session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_message(session, project_id, thread_id, message_id)
    await session.delete(row)
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

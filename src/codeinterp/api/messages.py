"""/v1/threads/{thread_id}/messages: create, list, retrieve, modify, delete."""

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.messages import (
    CreateMessageRequest, DeleteMessageResponse, ListMessagesResponse, MessageObject, ModifyMessageRequest,
)
from codeinterp.store import messages as service
from codeinterp.store.threads import message_to_dict

router = APIRouter(prefix="/v1/threads/{thread_id}/messages", tags=["Assistants"])


@router.post("", operation_id="createMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def create_message(thread_id: str, body: CreateMessageRequest, project_id: str = Depends(current_project),
                         session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    return message_to_dict(await service.create_message(session, project_id, thread_id, fields))


@router.get("", operation_id="listMessages", response_model=ListMessagesResponse, response_model_exclude_unset=True)
async def list_messages(thread_id: str, run_id: str | None = Query(None, max_length=256),
                        query: ListQuery = Depends(ListQuery), project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    return await service.list_messages(session, project_id, thread_id, query, run_id=run_id)


@router.get("/{message_id}", operation_id="getMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def retrieve_message(thread_id: str, message_id: str, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    return message_to_dict(await service.get_message(session, project_id, thread_id, message_id))


@router.post("/{message_id}", operation_id="modifyMessage", response_model=MessageObject, response_model_exclude_unset=True)
async def modify_message(thread_id: str, message_id: str, body: ModifyMessageRequest,
                         project_id: str = Depends(current_project),
                         session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    return message_to_dict(await service.update_message(session, project_id, thread_id, message_id, fields))


@router.delete("/{message_id}", operation_id="deleteMessage", response_model=DeleteMessageResponse)
async def delete_message(thread_id: str, message_id: str, project_id: str = Depends(current_project),
                         session: AsyncSession = Depends(db_session)) -> dict:
    await service.delete_message(session, project_id, thread_id, message_id)
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

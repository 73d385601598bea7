"""/v1/assistants: create, list, retrieve, modify, delete."""

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.assistants import (
    AssistantObject, CreateAssistantRequest, DeleteAssistantResponse, ListAssistantsResponse,
    ModifyAssistantRequest,
)
from codeinterp.store import assistants as service
from codeinterp.store.assistants import assistant_to_dict

router = APIRouter(prefix="/v1/assistants", tags=["Assistants"])


@router.post("", operation_id="createAssistant", response_model=AssistantObject, response_model_exclude_unset=True)
async def create_assistant(body: CreateAssistantRequest, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    return assistant_to_dict(await service.create_assistant(session, project_id, body.model_dump(exclude_unset=True)))


@router.get("", operation_id="listAssistants", response_model=ListAssistantsResponse, response_model_exclude_unset=True)
async def list_assistants(query: ListQuery = Depends(ListQuery), project_id: str = Depends(current_project),
                          session: AsyncSession = Depends(db_session)) -> dict:
    return await service.list_assistants(session, project_id, query)


@router.get("/{assistant_id}", operation_id="getAssistant", response_model=AssistantObject, response_model_exclude_unset=True)
async def retrieve_assistant(assistant_id: str, project_id: str = Depends(current_project),
                             session: AsyncSession = Depends(db_session)) -> dict:
    return assistant_to_dict(await service.get_assistant(session, project_id, assistant_id))


@router.post("/{assistant_id}", operation_id="modifyAssistant", response_model=AssistantObject, response_model_exclude_unset=True)
async def modify_assistant(assistant_id: str, body: ModifyAssistantRequest,
                           project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    return assistant_to_dict(await service.update_assistant(session, project_id, assistant_id, fields))


@router.delete("/{assistant_id}", operation_id="deleteAssistant", response_model=DeleteAssistantResponse)
async def delete_assistant(assistant_id: str, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    await service.delete_assistant(session, project_id, assistant_id)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

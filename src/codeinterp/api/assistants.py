"""/v1/assistants: create, list, retrieve, modify, delete."""

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.pagination import ListQuery, paginate
from codeinterp.api.schemas.assistants import (
    AssistantObject, CreateAssistantRequest, DeleteAssistantResponse, ListAssistantsResponse,
    ModifyAssistantRequest,
)
from codeinterp.store.assistants import (
    Assistant, assistant_to_dict, check_metadata, check_tool_resources, check_tools, get_owned,
)
from codeinterp.store.ids import new_id, now

router = APIRouter(prefix="/v1/assistants", tags=["Assistants"])


async def _apply(session: AsyncSession, project_id: str, row: Assistant, fields: dict) -> None:
    """Set the given fields on the row, checked as the store checks them."""
    if "tools" in fields:
        row.tools = check_tools(fields["tools"])
    if "tool_resources" in fields:
        row.tool_resources = await check_tool_resources(session, project_id, fields["tool_resources"])
    if "metadata" in fields:
        row.metadata_ = check_metadata(fields["metadata"])
    for name in ("model", "name", "description", "instructions", "temperature", "top_p", "response_format"):
        if name in fields:
            setattr(row, name, fields[name])


@router.post("", response_model=AssistantObject)
async def create_assistant(body: CreateAssistantRequest, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    row = Assistant(id=new_id("asst"), project_id=project_id, created_at=now(), model=body.model,
                    tools=[], metadata_={})
    await _apply(session, project_id, row, body.model_dump(exclude_unset=True))
    session.add(row)
    await session.flush()
    return assistant_to_dict(row)


@router.get("", response_model=ListAssistantsResponse)
async def list_assistants(query: ListQuery = Depends(ListQuery), project_id: str = Depends(current_project),
                          session: AsyncSession = Depends(db_session)) -> dict:
    stmt = select(Assistant).where(Assistant.project_id == project_id)
    return await paginate(session, stmt, Assistant, query, assistant_to_dict, order_column=Assistant.sequence)


@router.get("/{assistant_id}", response_model=AssistantObject)
async def retrieve_assistant(assistant_id: str, project_id: str = Depends(current_project),
                             session: AsyncSession = Depends(db_session)) -> dict:
    return assistant_to_dict(await get_owned(session, Assistant, project_id, assistant_id, "assistant"))


@router.post("/{assistant_id}", response_model=AssistantObject)
async def modify_assistant(assistant_id: str, body: ModifyAssistantRequest,
                           project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_owned(session, Assistant, project_id, assistant_id, "assistant")
    fields = body.model_dump(exclude_unset=True)
    if fields.get("model") is None:
        fields.pop("model", None)
    await _apply(session, project_id, row, fields)
    await session.flush()
    return assistant_to_dict(row)


@router.delete("/{assistant_id}", response_model=DeleteAssistantResponse)
async def delete_assistant(assistant_id: str, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    row = await get_owned(session, Assistant, project_id, assistant_id, "assistant")
    await session.delete(row)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

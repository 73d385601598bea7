"""Assistants: the table, its contract shape (`AssistantObject`) and the service.

Bodies reach the service validated (the API's request models, dumped with only the fields given);
the service checks what needs the database: that file ids are the project's."""

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest
from codeinterp.store.ids import new_id, next_sequence, now
from codeinterp.store.ownership import get_owned
from codeinterp.store.pagination import PageQuery, paginate
from codeinterp.store.references import stored_tool_resources


class Assistant(Base):
    __tablename__ = "assistants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    created_at: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    description: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model: Mapped[str] = mapped_column(String(256))
    instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    tools: Mapped[list] = mapped_column(JSON, default=list)
    tool_resources: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_p: Mapped[float | None] = mapped_column(Float, nullable=True)
    response_format: Mapped[Any] = mapped_column(JSON, nullable=True)


def assistant_to_dict(row: Assistant) -> dict:
    return {
        "id": row.id, "object": "assistant", "created_at": row.created_at, "name": row.name,
        "description": row.description, "model": row.model, "instructions": row.instructions,
        "tools": row.tools or [], "tool_resources": row.tool_resources or {},
        "metadata": row.metadata_ or {}, "temperature": row.temperature, "top_p": row.top_p,
        "response_format": row.response_format if row.response_format is not None else "auto",
    }


def stored_tools(tools: list[dict] | None) -> list[dict]:
    """Validated tools as stored: `{"type": "code_interpreter"}` or `{"type": "function", "function": {...}}`
    without the function's null fields."""
    return [{"type": "code_interpreter"} if tool["type"] == "code_interpreter" else
            {"type": "function", "function": {k: v for k, v in tool["function"].items() if v is not None}}
            for tool in tools or []]


async def _set_fields(session: AsyncSession, project_id: str, row: Assistant, body: dict) -> None:
    if body.get("model") is not None:
        row.model = body["model"]
    for name in ("name", "description", "instructions", "temperature", "top_p", "response_format"):
        if name in body:
            setattr(row, name, body[name])
    if "tools" in body:
        row.tools = stored_tools(body["tools"])
    if "tool_resources" in body:
        row.tool_resources = await stored_tool_resources(session, project_id, body["tool_resources"])
    if "metadata" in body:
        row.metadata_ = body["metadata"] or {}
    if isinstance(row.response_format, dict) and row.response_format["type"] == "json_schema" \
            and any(t["type"] != "function" for t in row.tools):
        raise InvalidRequest("Invalid tools: all tools must be of type 'function' when response_format is of type "
                             "'json_schema'.", param="response_format")


async def create_assistant(session: AsyncSession, project_id: str, body: dict) -> Assistant:
    """A new assistant from a validated `CreateAssistantRequest`."""
    row = Assistant(id=new_id("asst"), project_id=project_id, sequence=next_sequence(), created_at=now(),
                    model=body["model"], tools=[], tool_resources=None, metadata_={})
    await _set_fields(session, project_id, row, body)
    session.add(row)
    await session.flush()
    return row


async def get_assistant(session: AsyncSession, project_id: str, assistant_id: str) -> Assistant:
    return await get_owned(session, Assistant, "assistant", assistant_id, project_id)


async def update_assistant(session: AsyncSession, project_id: str, assistant_id: str, body: dict) -> Assistant:
    """Changes the fields present in a validated `ModifyAssistantRequest`; `model: null` keeps the model."""
    row = await get_assistant(session, project_id, assistant_id)
    await _set_fields(session, project_id, row, body)
    await session.flush()
    return row


async def delete_assistant(session: AsyncSession, project_id: str, assistant_id: str) -> None:
    await session.delete(await get_assistant(session, project_id, assistant_id))
    await session.flush()


async def list_assistants(session: AsyncSession, project_id: str, query: PageQuery) -> dict:
    return await paginate(session, select(Assistant).where(Assistant.project_id == project_id), Assistant, query,
                          assistant_to_dict, order_column=Assistant.sequence)

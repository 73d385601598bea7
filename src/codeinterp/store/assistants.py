"""Assistants, threads and messages: tables, contract-shaped dicts (`AssistantObject`,
`ThreadObject`, `MessageObject`) and the validation shared by every way of creating them
(the assistants and threads endpoints, and thread-and-run)."""

import time
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest, NotFound
from codeinterp.store.files import File
from codeinterp.store.ids import new_id, now

MAX_CODE_FILES = 20
MAX_METADATA_KEYS = 16


class Assistant(Base):
    __tablename__ = "assistants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    # Creation order, finer than `created_at` seconds.
    sequence: Mapped[int] = mapped_column(BigInteger, default=time.time_ns)
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


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    tool_resources: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger, default=time.time_ns)
    created_at: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list] = mapped_column(JSON, default=list)
    attachments: Mapped[list | None] = mapped_column(JSON, nullable=True)
    assistant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incomplete_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incomplete_details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)

    __table_args__ = (Index("ix_messages_thread", "project_id", "thread_id", "sequence"),)


# ---- contract-shaped dicts ----------------------------------------------------------------

def assistant_to_dict(row: Assistant) -> dict:
    return {
        "id": row.id, "object": "assistant", "created_at": row.created_at, "name": row.name,
        "description": row.description, "model": row.model, "instructions": row.instructions,
        "tools": row.tools or [], "tool_resources": row.tool_resources or {},
        "metadata": row.metadata_ or {}, "temperature": row.temperature, "top_p": row.top_p,
        "response_format": row.response_format if row.response_format is not None else "auto",
    }


def thread_to_dict(row: Thread) -> dict:
    return {"id": row.id, "object": "thread", "created_at": row.created_at,
            "tool_resources": row.tool_resources or {}, "metadata": row.metadata_ or {}}


def message_to_dict(row: Message) -> dict:
    return {
        "id": row.id, "object": "thread.message", "created_at": row.created_at, "thread_id": row.thread_id,
        "status": row.status, "incomplete_details": row.incomplete_details, "completed_at": row.completed_at,
        "incomplete_at": row.incomplete_at, "role": row.role, "content": row.content or [],
        "assistant_id": row.assistant_id, "run_id": row.run_id, "attachments": row.attachments or [],
        "metadata": row.metadata_ or {},
    }


# ---- validation -----------------------------------------------------------------------------

def check_metadata(metadata: Any, param: str = "metadata") -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object of string keys and string values.", param=param)
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata can have at most {MAX_METADATA_KEYS} keys.", param=param)
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"metadata value for '{key}' must be a string.", param=f"{param}.{key}")
        if len(key) > 64:
            raise InvalidRequest("metadata keys can be at most 64 characters long.", param=param)
        if len(value) > 512:
            raise InvalidRequest("metadata values can be at most 512 characters long.", param=f"{param}.{key}")
    return dict(metadata)


async def check_file_ids(session: AsyncSession, project_id: str, file_ids: list[str], param: str) -> None:
    if not file_ids:
        return
    found = set((await session.execute(
        select(File.id).where(File.project_id == project_id, File.id.in_(file_ids)))).scalars())
    for n, file_id in enumerate(file_ids):
        if file_id not in found:
            raise InvalidRequest(f"No file found with id '{file_id}'.", param=f"{param}[{n}]")


async def check_tool_resources(session: AsyncSession, project_id: str, resources: Any,
                               param: str = "tool_resources") -> dict | None:
    if resources is None:
        return None
    if not isinstance(resources, dict):
        raise InvalidRequest("tool_resources must be an object.", param=param)
    if resources.get("file_search"):
        raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                             param=f"{param}.file_search")
    code = resources.get("code_interpreter")
    if code is None:
        return {}
    file_ids = list((code or {}).get("file_ids") or [])
    if len(file_ids) > MAX_CODE_FILES:
        raise InvalidRequest(f"tool_resources.code_interpreter.file_ids can have at most {MAX_CODE_FILES} files.",
                             param=f"{param}.code_interpreter.file_ids")
    await check_file_ids(session, project_id, file_ids, f"{param}.code_interpreter.file_ids")
    return {"code_interpreter": {"file_ids": file_ids}}


def check_tools(tools: Any, param: str = "tools") -> list[dict]:
    """Tools as stored: code_interpreter and function tools; file_search is refused clearly."""
    if tools is None:
        return []
    checked = []
    for n, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "file_search":
            raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                                 param=f"{param}[{n}].type")
        if kind not in ("code_interpreter", "function"):
            raise InvalidRequest(f"Invalid tool type {kind!r}: expected 'code_interpreter' or 'function'.",
                                 param=f"{param}[{n}].type")
        checked.append(tool)
    return checked


def message_content(content: Any, param: str = "content") -> list[dict]:
    """A message's content as the contract's content blocks, from a string or a list of parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    if not isinstance(content, list) or not content:
        raise InvalidRequest("content must be a string or a non-empty array of content parts.", param=param)
    blocks = []
    for n, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        elif kind == "image_file" and isinstance(part.get("image_file"), dict) and part["image_file"].get("file_id"):
            blocks.append({"type": "image_file", "image_file": {
                "file_id": part["image_file"]["file_id"], "detail": part["image_file"].get("detail") or "auto"}})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict) and part["image_url"].get("url"):
            blocks.append({"type": "image_url", "image_url": {
                "url": part["image_url"]["url"], "detail": part["image_url"].get("detail") or "auto"}})
        else:
            raise InvalidRequest("Each content part must be text, image_file or image_url.", param=f"{param}[{n}]")
    return blocks


async def check_attachments(session: AsyncSession, project_id: str, attachments: Any,
                            param: str = "attachments") -> list[dict] | None:
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        raise InvalidRequest("attachments must be an array.", param=param)
    checked = []
    for n, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or not isinstance(attachment.get("file_id"), str):
            raise InvalidRequest("Each attachment needs a file_id.", param=f"{param}[{n}].file_id")
        tools = attachment.get("tools") or []
        for m, tool in enumerate(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind == "file_search":
                raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                                     param=f"{param}[{n}].tools[{m}].type")
            if kind != "code_interpreter":
                raise InvalidRequest(f"Invalid attachment tool type {kind!r}.", param=f"{param}[{n}].tools[{m}].type")
        checked.append({"file_id": attachment["file_id"], "tools": [{"type": "code_interpreter"}] if tools else []})
    await check_file_ids(session, project_id, [a["file_id"] for a in checked], param)
    return checked


# ---- services -------------------------------------------------------------------------------

async def get_owned(session: AsyncSession, table, project_id: str, object_id: str, kind: str):
    """The row with this id in this project; another project's rows do not exist here."""
    row = await session.get(table, object_id) if object_id else None
    if row is None or row.project_id != project_id:
        raise NotFound(kind, object_id)
    return row


async def create_thread(session: AsyncSession, project_id: str, body: dict) -> Thread:
    """A thread with its initial messages (`CreateThreadRequest` as a dict)."""
    thread = Thread(id=new_id("thread"), project_id=project_id, created_at=now(),
                    tool_resources=await check_tool_resources(session, project_id, body.get("tool_resources")),
                    metadata_=check_metadata(body.get("metadata")))
    session.add(thread)
    for n, message in enumerate(body.get("messages") or []):
        await create_message(session, project_id, thread.id, message, param=f"messages[{n}]", thread=thread)
    await session.flush()
    return thread


async def create_message(session: AsyncSession, project_id: str, thread_id: str, body: dict,
                         param: str = "", thread: Thread | None = None) -> Message:
    """A user (or assistant-authored) message (`CreateMessageRequest` as a dict)."""
    prefix = f"{param}." if param else ""
    if thread is None:
        await get_owned(session, Thread, project_id, thread_id, "thread")
    role = body.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest("role must be 'user' or 'assistant'.", param=f"{prefix}role")
    if "content" not in body:
        raise InvalidRequest("Missing required parameter: 'content'.", param=f"{prefix}content")
    content = message_content(body.get("content"), param=f"{prefix}content")
    image_ids = [b["image_file"]["file_id"] for b in content if b["type"] == "image_file"]
    await check_file_ids(session, project_id, image_ids, f"{prefix}content")
    t = now()
    message = Message(id=new_id("msg"), project_id=project_id, thread_id=thread_id, created_at=t,
                      sequence=time.time_ns(), role=role, content=content,
                      attachments=await check_attachments(session, project_id, body.get("attachments"),
                                                          f"{prefix}attachments"),
                      status="completed", completed_at=None,
                      metadata_=check_metadata(body.get("metadata"), f"{prefix}metadata"))
    session.add(message)
    await session.flush()
    return message


async def list_thread_messages(session: AsyncSession, project_id: str, thread_id: str) -> list[Message]:
    """The thread's messages in creation order."""
    return list((await session.execute(
        select(Message).where(Message.project_id == project_id, Message.thread_id == thread_id)
        .order_by(Message.sequence))).scalars())

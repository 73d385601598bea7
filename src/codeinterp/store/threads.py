"""Threads and the messages they hold: tables, contract shapes (`ThreadObject`, `MessageObject`)
and the thread service (messages have theirs in `messages`).

Bodies reach the services validated (the API's request models, dumped with only the fields given);
the services check what needs the database: file ids of the project, no active run. `param`
prefixes the parameters named in errors, e.g. "thread" when the body came inside a thread-and-run
request."""

from sqlalchemy import JSON, BigInteger, Index, Integer, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.ids import new_id, next_sequence, now
from codeinterp.store.ownership import get_owned
from codeinterp.store.references import check_file_ids, stored_tool_resources
from codeinterp.store.replicas import forget_streams
from codeinterp.store.runs import Run, RunStep, refuse_if_running, run_to_dict


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
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
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


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def stored_content(parts: list[dict]) -> list[dict]:
    """Validated content parts as the contract's content blocks."""
    blocks = []
    for part in parts:
        if part["type"] == "text":
            blocks.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        else:
            image = part[part["type"]]
            key = "file_id" if part["type"] == "image_file" else "url"
            blocks.append({"type": part["type"], part["type"]: {key: image[key],
                                                               "detail": image.get("detail", "auto")}})
    return blocks


async def add_message(session: AsyncSession, project_id: str, thread_id: str, body: dict,
                      param: str = "") -> Message:
    """A message from a validated `CreateMessageRequest`, on a thread the caller found to be the
    project's and not running."""
    content = stored_content(body["content"])
    attachments = [{"file_id": a["file_id"], "tools": [{"type": t["type"]} for t in a.get("tools") or []]}
                   for a in body.get("attachments") or []]
    referenced = [(block["image_file"]["file_id"], _join(param, f"content[{n}].image_file.file_id"))
                  for n, block in enumerate(content) if block["type"] == "image_file"]
    referenced += [(a["file_id"], _join(param, f"attachments[{n}].file_id")) for n, a in enumerate(attachments)]
    await check_file_ids(session, project_id, [f for f, _ in referenced], [p for _, p in referenced])
    message = Message(id=new_id("msg"), project_id=project_id, thread_id=thread_id, created_at=now(),
                      sequence=next_sequence(), role=body["role"], content=content, attachments=attachments,
                      status="completed", completed_at=None, metadata_=body.get("metadata") or {})
    session.add(message)
    await session.flush()
    return message


async def get_thread(session: AsyncSession, project_id: str, thread_id: str) -> Thread:
    return await get_owned(session, Thread, "thread", thread_id, project_id)


async def create_thread(session: AsyncSession, project_id: str, body: dict | None, param: str = "") -> Thread:
    """A thread with its initial messages, from a validated `CreateThreadRequest`."""
    body = body or {}
    thread = Thread(id=new_id("thread"), project_id=project_id, created_at=now(),
                    tool_resources=await stored_tool_resources(session, project_id, body.get("tool_resources"),
                                                               _join(param, "tool_resources")),
                    metadata_=body.get("metadata") or {})
    session.add(thread)
    for n, message in enumerate(body.get("messages") or []):
        await add_message(session, project_id, thread.id, message, param=_join(param, f"messages[{n}]"))
    await session.flush()
    return thread


async def update_thread(session: AsyncSession, project_id: str, thread_id: str, body: dict) -> Thread:
    """Changes `tool_resources` and/or `metadata` (a validated `ModifyThreadRequest`)."""
    row = await get_thread(session, project_id, thread_id)
    if "tool_resources" in body:
        row.tool_resources = await stored_tool_resources(session, project_id, body["tool_resources"])
    if "metadata" in body:
        row.metadata_ = body["metadata"] or {}
    await session.flush()
    return row


async def fail_runs(session: AsyncSession, run_ids, error: dict) -> list[dict]:
    """End runs no task drives any more as `failed` with `error` (their open steps failed, their
    open messages incomplete); their run objects."""
    t = now()
    await session.execute(update(Run).where(Run.id.in_(run_ids)).values(
        status="failed", failed_at=t, last_error=error, required_action=None))
    await session.execute(update(RunStep).where(RunStep.run_id.in_(run_ids), RunStep.status == "in_progress")
                          .values(status="failed", failed_at=t, last_error=error))
    await session.execute(update(Message).where(Message.run_id.in_(run_ids), Message.status == "in_progress")
                          .values(status="incomplete", incomplete_at=t, incomplete_details={"reason": "run_failed"}))
    await session.commit()
    runs = (await session.execute(select(Run).where(Run.id.in_(run_ids)).execution_options(
        populate_existing=True))).scalars().all()
    return [run_to_dict(r) for r in runs]


async def delete_thread(session: AsyncSession, project_id: str, thread_id: str) -> None:
    """Deletes the thread with its messages, runs and run steps (not while a run on it is active)."""
    row = await get_thread(session, project_id, thread_id)
    await refuse_if_running(session, project_id, thread_id, "delete thread")
    await forget_streams(session, select(Run.id).where(Run.project_id == project_id, Run.thread_id == thread_id))
    for table in (Message, RunStep, Run):
        await session.execute(delete(table).where(table.project_id == project_id, table.thread_id == thread_id))
    await session.delete(row)
    await session.flush()

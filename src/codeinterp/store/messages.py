"""The message service: a thread's messages, added, listed, read, changed and deleted."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.store.ownership import get_owned
from codeinterp.store.pagination import PageQuery, paginate
from codeinterp.store.runs import refuse_if_running
from codeinterp.store.threads import Message, add_message, get_thread, message_to_dict


async def create_message(session: AsyncSession, project_id: str, thread_id: str, body: dict,
                         param: str = "") -> Message:
    """A message from a validated `CreateMessageRequest`; not while a run on the thread is active,
    as OpenAI answers."""
    await get_thread(session, project_id, thread_id)
    await refuse_if_running(session, project_id, thread_id, "add messages to")
    return await add_message(session, project_id, thread_id, body, param)


async def get_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> Message:
    """The message, which must belong to this thread of this project."""
    await get_thread(session, project_id, thread_id)
    return await get_owned(session, Message, "message", message_id, project_id, thread_id=thread_id)


async def list_messages(session: AsyncSession, project_id: str, thread_id: str, query: PageQuery,
                        run_id: str | None = None) -> dict:
    await get_thread(session, project_id, thread_id)
    stmt = select(Message).where(Message.project_id == project_id, Message.thread_id == thread_id)
    if run_id is not None:
        stmt = stmt.where(Message.run_id == run_id)
    return await paginate(session, stmt, Message, query, message_to_dict, order_column=Message.sequence)


async def update_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str,
                         body: dict) -> Message:
    """Changes `metadata` (a validated `ModifyMessageRequest`)."""
    row = await get_message(session, project_id, thread_id, message_id)
    if "metadata" in body:
        row.metadata_ = body["metadata"] or {}
    await session.flush()
    return row


async def delete_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> None:
    await session.delete(await get_message(session, project_id, thread_id, message_id))
    await session.flush()

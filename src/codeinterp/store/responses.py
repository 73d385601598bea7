"""Responses and their items: tables, the contract-shaped `Response` dict, and the chain of
`previous_response_id`.

A response's request settings and outcome are one row of `responses`; its input items and
output items are rows of `response_items` (kind `input` or `output`, in `position` order), so that
retrieve, `input_items` and a later response's `previous_response_id` read back exactly what was
sent and made. A code call's item keeps, beside its public shape, the text the model read after
the code ran (`model_text`), so a chain replays the same tool result to the model.
"""

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, Text, delete, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest
from codeinterp.store.ids import next_sequence
from codeinterp.store.ownership import get_owned, plausible_id
from codeinterp.store.pagination import PageQuery, paginate
from codeinterp.store.replicas import forget_streams

ACTIVE_STATUSES = ("queued", "in_progress")
INCLUDE_CODE_OUTPUTS = "code_interpreter_call.outputs"
MAX_CHAIN_RESPONSES = 1000  # a previous_response_id chain is followed at most this far back


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    status: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    instructions: Mapped[Any] = mapped_column(JSON, nullable=True)  # a string or input items
    tools: Mapped[list] = mapped_column(JSON, default=list)  # as sent, the auto container resolved
    tool_choice: Mapped[Any] = mapped_column(JSON, nullable=True)
    parallel_tool_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_p: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_tool_calls: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    previous_response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    container_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # code_interpreter's
    store: Mapped[bool] = mapped_column(Boolean, default=True)
    background: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    incomplete_details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    usage: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ResponseItem(Base):
    __tablename__ = "response_items"

    response_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # input | output
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), index=True)  # the item's own id (msg_, ci_, fc_, ...)
    data: Mapped[dict] = mapped_column(JSON)
    model_text: Mapped[str | None] = mapped_column(Text, nullable=True)


def usage_dict(usage: dict | None) -> dict | None:
    """Chat Completions token counts as the Responses `usage` object."""
    if usage is None:
        return None
    return {"input_tokens": usage.get("prompt_tokens", 0),
            "input_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0),
                                     "cache_write_tokens": usage.get("cache_write_tokens", 0)},
            "output_tokens": usage.get("completion_tokens", 0),
            "output_tokens_details": {"reasoning_tokens": usage.get("reasoning_tokens", 0)},
            "total_tokens": usage.get("total_tokens", 0)}


def item_view(data: dict, include: set[str]) -> dict:
    """An item as the client sees it: a code call's `outputs` only when included."""
    if data.get("type") == "code_interpreter_call" and INCLUDE_CODE_OUTPUTS not in include:
        return dict(data, outputs=None)
    return data


def response_to_dict(row: Response, output: list[dict], include: set[str] = frozenset()) -> dict:
    output = [item_view(item, include) for item in output]
    text = "".join(part.get("text", "") for item in output if item.get("type") == "message"
                   for part in item.get("content") or [] if part.get("type") == "output_text")
    return {
        "id": row.id, "object": "response", "created_at": row.created_at, "status": row.status,
        "completed_at": row.completed_at, "background": row.background, "error": row.error,
        "incomplete_details": row.incomplete_details, "instructions": row.instructions,
        "max_output_tokens": row.max_output_tokens, "max_tool_calls": row.max_tool_calls, "model": row.model,
        "output": output,
        "output_text": text, "parallel_tool_calls": row.parallel_tool_calls,
        "previous_response_id": row.previous_response_id, "reasoning": {"effort": None, "summary": None},
        "store": row.store, "temperature": row.temperature, "text": row.text or {"format": {"type": "text"}},
        "tool_choice": row.tool_choice if row.tool_choice is not None else "auto", "tools": row.tools or [],
        "top_p": row.top_p, "truncation": "disabled", "usage": usage_dict(row.usage), "user": None,
        "metadata": row.metadata_ or {},
    }


async def add_response(c: AsyncConnection, row: Response) -> None:
    """Store a new response (a row not in any ORM session: the caller keeps it as its record)."""
    values = {a.columns[0].key: getattr(row, a.key) for a in inspect(Response).column_attrs}
    await c.execute(insert(Response).values({k: v for k, v in values.items() if v is not None}))


async def add_items(c: AsyncConnection, response_id: str, kind: str, items: list[tuple[dict, str | None]],
                    start: int = 0) -> None:
    """Store items (data, model text) at positions from `start`."""
    if items:
        await c.execute(ResponseItem.__table__.insert(), [
            {"id": data["id"], "response_id": response_id, "kind": kind,
             "position": start + n, "data": data, "model_text": model_text}
            for n, (data, model_text) in enumerate(items)])


async def items_of(session: AsyncSession, response_ids: list[str], kind: str | None = None) -> list[ResponseItem]:
    """The items of these responses: response by response in the order given, inputs first."""
    stmt = select(ResponseItem).where(ResponseItem.response_id.in_(response_ids))
    if kind is not None:
        stmt = stmt.where(ResponseItem.kind == kind)
    rows = (await session.execute(stmt)).scalars().all()
    order = {rid: n for n, rid in enumerate(response_ids)}
    return sorted(rows, key=lambda r: (order[r.response_id], r.kind != "input", r.position))


async def code_call_results(session: AsyncSession, project_id: str, calls: dict[str, str]) -> dict[str, str]:
    """What the model read after each of these code calls (id -> code) that a stored response of
    the project made with that code: a client that sends a call back without its outputs (they
    "can be read server-side") gets the same tool result replayed."""
    if not calls:
        return {}
    stmt = (select(ResponseItem).join(Response, Response.id == ResponseItem.response_id)
            .where(ResponseItem.id.in_(list(calls)), ResponseItem.kind == "output",
                   Response.project_id == project_id))
    return {row.id: row.model_text for row in (await session.execute(stmt)).scalars()
            if row.data.get("type") == "code_interpreter_call" and row.data.get("code") == calls[row.id]
            and row.model_text is not None}


async def get_response(session: AsyncSession, project_id: str, response_id: str) -> Response:
    return await get_owned(session, Response, "response", response_id, project_id)


async def response_with_output(session: AsyncSession, project_id: str, response_id: str,
                               include: set[str] = frozenset()) -> dict:
    row = await get_response(session, project_id, response_id)
    return response_to_dict(row, [i.data for i in await items_of(session, [row.id], "output")], include)


async def chain(session: AsyncSession, project_id: str, previous_response_id: str) -> list[Response]:
    """The responses of a `previous_response_id` chain, oldest first. Unknown id: 400."""
    found: list[Response] = []
    next_id: str | None = previous_response_id
    while next_id is not None and len(found) < MAX_CHAIN_RESPONSES:
        row = await session.get(Response, next_id) if plausible_id(next_id) else None
        if row is None or row.project_id != project_id or not row.store:
            if not found:
                raise InvalidRequest(f"Previous response with id '{previous_response_id}' not found.",
                                     param="previous_response_id", code="previous_response_not_found")
            break
        found.append(row)
        next_id = row.previous_response_id
    return found[::-1]


async def list_input_items(session: AsyncSession, project_id: str, response_id: str, query: PageQuery,
                           include: set[str]) -> dict:
    await get_response(session, project_id, response_id)
    stmt = select(ResponseItem).where(ResponseItem.response_id == response_id, ResponseItem.kind == "input")
    page = await paginate(session, stmt, ResponseItem, query, lambda r: item_view(r.data, include),
                          order_column=ResponseItem.position)
    return page


async def delete_response(session: AsyncSession, project_id: str, response_id: str) -> None:
    row = await get_response(session, project_id, response_id)
    await session.execute(delete(ResponseItem).where(ResponseItem.response_id == row.id))
    await forget_streams(session, [row.id])
    await session.delete(row)


async def forget(c: AsyncConnection, response_id: str) -> None:
    """A response made with `store: false` leaves nothing behind once it ends."""
    await c.execute(delete(ResponseItem).where(ResponseItem.response_id == response_id))
    await c.execute(delete(Response).where(Response.id == response_id))


async def fail_unfinished(c: AsyncConnection, error: dict, ids=None) -> int:
    """Responses a previous process left queued or in progress (those of `ids`, if given) end
    `failed` with `error`."""
    condition = Response.status.in_(ACTIVE_STATUSES)
    if ids is not None:
        condition = condition & Response.id.in_(ids)
    result = await c.execute(update(Response).where(condition).values(status="failed", error=error))
    return result.rowcount or 0


async def status_of(session: AsyncSession, response_id: str) -> str | None:
    return (await session.execute(select(Response.status).where(Response.id == response_id))).scalar()


async def is_going_on(db, response_id: str) -> bool:
    """Whether the response is queued or in progress (from a session of its own: for a long stream)."""
    async with db.session() as session:
        return await status_of(session, response_id) in ACTIVE_STATUSES


async def finish(c: AsyncConnection, response_id: str, **values) -> None:
    await c.execute(update(Response).where(Response.id == response_id).values(**values))

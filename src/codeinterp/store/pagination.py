"""OpenAI list pagination over a statement: `limit`, `order`, `after`, `before` -> one page."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.store.errors import InvalidRequest


@dataclass
class PageQuery:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


async def _cursor(session: AsyncSession, stmt, table, order_column, cursor_id: str, param: str):
    if len(cursor_id) > 256 or not cursor_id.isprintable():
        raise InvalidRequest(f"No object found with id '{cursor_id[:64]}' to page from.", param=param)
    row = (await session.execute(
        stmt.with_only_columns(order_column, table.id).where(table.id == cursor_id).order_by(None))).first()
    if row is None:
        raise InvalidRequest(f"No object found with id '{cursor_id}' to page from.", param=param)
    return row[0], row[1]


def _beyond(order_column, id_column, value, cursor_id, forward: bool):
    if forward:
        return or_(order_column > value, and_(order_column == value, id_column > cursor_id))
    return or_(order_column < value, and_(order_column == value, id_column < cursor_id))


async def paginate(session: AsyncSession, stmt, table, query: PageQuery, to_object: Callable[[Any], dict],
                   order_column=None) -> dict:
    """Run `stmt` (a `select(Table)` with the caller's filters) as one page of an OpenAI list.

    Rows are ordered by `order_column` (default `table.created_at`), ties broken by id.
    """
    order_column = order_column if order_column is not None else table.created_at
    ascending = query.order == "asc"
    page = stmt
    if query.after:
        value, cursor_id = await _cursor(session, stmt, table, order_column, query.after, "after")
        page = page.where(_beyond(order_column, table.id, value, cursor_id, forward=ascending))
    if query.before:
        value, cursor_id = await _cursor(session, stmt, table, order_column, query.before, "before")
        page = page.where(_beyond(order_column, table.id, value, cursor_id, forward=not ascending))
    # With only `before`, read backwards from the cursor so the page ends right before it.
    backwards = bool(query.before) and not query.after
    if ascending != backwards:
        page = page.order_by(None).order_by(order_column.asc(), table.id.asc())
    else:
        page = page.order_by(None).order_by(order_column.desc(), table.id.desc())
    rows = list((await session.execute(page.limit(query.limit + 1))).scalars())
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    data = [to_object(r) for r in rows]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}

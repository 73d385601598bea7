"""Every object belongs to one project; another project's objects do not exist for a caller."""

from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.store.errors import NotFound


def plausible_id(value: object) -> bool:
    """Ids are short printable strings; anything else cannot name a stored object."""
    return isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable()


def owned(row, kind: str, object_id: str, project_id: str, **parents: str):
    """`row` (an ORM object or a Core row) if it is the project's and has these parent ids
    (e.g. `thread_id=...`); else NotFound(kind, object_id)."""
    if row is None or row.project_id != project_id or any(getattr(row, k) != v for k, v in parents.items()):
        raise NotFound(kind, object_id)
    return row


async def get_owned(session: AsyncSession, table, kind: str, object_id: str, project_id: str, **parents: str):
    """The row of `table` with this id, if `owned`."""
    row = await session.get(table, object_id) if plausible_id(object_id) else None
    return owned(row, kind, object_id, project_id, **parents)

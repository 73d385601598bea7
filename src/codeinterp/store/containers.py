"""Containers: a stored code session (its sandbox, its expiry, the files it holds).

A thread's runs use a container of their own (its `thread_id` names the thread); the Containers
API creates others directly. The sandbox session itself lives in a sandbox backend; the row
keeps its id while it is alive, and `last_active_at` decides expiry: a container is expired once
`last_active_at + expires_after_minutes` has passed. Files the container holds are rows too
(`cfile_...`): `user` files copied in, `assistant` files the code wrote. A row's bytes are a blob:
the Files API file `file_id` (files copied in by id, a thread's outputs), or, when `file_id` is
None, a blob of the container's own named by the row's id (uploads, an API container's outputs).
Functions that forget rows return the names of the own blobs to delete once committed.
"""

import math
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Integer, String, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest, NotFound
from codeinterp.store.files import File
from codeinterp.store.ids import new_id, next_sequence, now
from codeinterp.store.ownership import get_owned
from codeinterp.store.pagination import PageQuery, paginate

MEMORY_TIERS = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}  # memory_limit -> MB
DEFAULT_EXPIRY_MINUTES = 20
DATA_DIR = "/mnt/data/"


class Container(Base):
    __tablename__ = "containers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(256))
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)  # the order of creation
    status: Mapped[str] = mapped_column(String(16))  # running | expired
    memory_limit: Mapped[str] = mapped_column(String(8))  # 1g | 4g | 16g | 64g
    expires_after_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
    last_active_at: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the live sandbox session
    thread_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)


class ContainerFile(Base):
    __tablename__ = "container_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    container_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)  # the order of creation
    path: Mapped[str] = mapped_column(String(4096))  # /mnt/data/...
    source: Mapped[str] = mapped_column(String(16))  # user | assistant
    bytes: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the Files API file holding the bytes
    created_at: Mapped[int] = mapped_column(Integer)


@dataclass
class NewFile:
    """A file the container now holds, as `add_files` records it."""

    path: str  # /mnt/data/...
    source: str  # user | assistant
    bytes: int
    file_id: str | None = None  # the Files API file holding the bytes; None: the row's own blob, named by `id`
    id: str = field(default_factory=lambda: new_id("cfile"))


def minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def expired(container: Container, at: int | None = None) -> bool:
    return (at if at is not None else now()) >= container.last_active_at + container.expires_after_minutes * 60


async def start_thread_session(c: AsyncConnection, project_id: str, thread_id: str, container_id: str | None,
                               session_id: str, expires_after_minutes: int) -> str:
    """A new sandbox session of the thread's container (made now, running, if the thread has none):
    the container's id. Files recorded for an earlier session are forgotten (a new session holds
    none of them until they are copied in again)."""
    if container_id is None:
        found = (await c.execute(select(Container.id, Container.project_id).where(Container.thread_id == thread_id))
                 ).one_or_none()
        if found is not None and found.project_id != project_id:  # a thread id of another project: never shared
            raise ValueError(f"thread {thread_id} belongs to another project")
        if found is None:
            t = now()
            container_id = new_id("cntr")
            await c.execute(insert(Container).values(
                id=container_id, project_id=project_id, name=f"thread {thread_id}", status="running",
                memory_limit="1g", expires_after_minutes=expires_after_minutes, created_at=t, last_active_at=t,
                sequence=next_sequence(),
                session_id=session_id, thread_id=thread_id))
            return container_id
        container_id = found.id
    await drop_files(c, container_id)
    await touch(c, container_id, session_id)
    return container_id


async def touch(c: AsyncConnection, container_id: str, session_id: str | None | bool = False) -> None:
    """`last_active_at` is now (and the live session is `session_id`, unless False: unchanged)."""
    values: dict = {"last_active_at": now(), "status": "running"}
    if session_id is not False:
        values["session_id"] = session_id
    await c.execute(update(Container).where(Container.id == container_id).values(**values))


async def add_files(c: AsyncConnection, container_id: str, project_id: str, files: list[NewFile]) -> list[str]:
    """Record files the container now holds. A path recorded before is replaced: the own blobs of
    the rows replaced are returned."""
    if not files:
        return []
    paths = [f.path for f in files]
    replaced = await _own_blobs(c, ContainerFile.container_id == container_id, ContainerFile.path.in_(paths))
    await c.execute(delete(ContainerFile).where(ContainerFile.container_id == container_id,
                                                ContainerFile.path.in_(paths)))
    t = now()
    await c.execute(insert(ContainerFile), [
        {"id": f.id, "container_id": container_id, "project_id": project_id, "sequence": next_sequence(),
         "path": f.path, "source": f.source, "bytes": f.bytes, "file_id": f.file_id, "created_at": t}
        for f in files])
    return replaced


async def _own_blobs(c: AsyncConnection, *where) -> list[str]:
    return list((await c.execute(select(ContainerFile.id).where(*where, ContainerFile.file_id.is_(None)))).scalars())


async def drop_files(c: AsyncConnection, container_id: str) -> list[str]:
    """Forget the container's files; their own blobs are returned."""
    blobs = await _own_blobs(c, ContainerFile.container_id == container_id)
    await c.execute(delete(ContainerFile).where(ContainerFile.container_id == container_id))
    return blobs


async def delete_container(c: AsyncConnection, container_id: str) -> list[str]:
    blobs = await drop_files(c, container_id)
    await c.execute(delete(Container).where(Container.id == container_id))
    return blobs


async def delete_thread_container(c: AsyncConnection, project_id: str, thread_id: str) -> list[str]:
    found = (await c.execute(select(Container.id).where(Container.thread_id == thread_id,
                                                        Container.project_id == project_id))).scalar()
    return [] if found is None else await delete_container(c, found)


async def forget_sessions(c: AsyncConnection) -> None:
    """At start: the sandbox sessions of a previous process are gone."""
    await c.execute(update(Container).where(Container.session_id.is_not(None)).values(session_id=None))


# ---- the Containers API's containers -------------------------------------------------------------

def container_to_dict(row: Container) -> dict:
    return {"id": row.id, "object": "container", "name": row.name, "created_at": row.created_at,
            "status": row.status, "last_active_at": row.last_active_at,
            "expires_after": {"anchor": "last_active_at", "minutes": row.expires_after_minutes},
            "memory_limit": row.memory_limit, "network_policy": {"type": "disabled"}}


async def expire_due(c: AsyncConnection, project_id: str, container_id: str | None = None) -> list[str]:
    """Expiry is decided when containers are read: a running container (of the project, or this one)
    whose `last_active_at + minutes` has passed becomes `expired` for good and loses its files (their
    own blobs are returned)."""
    due = (Container.project_id == project_id, Container.thread_id.is_(None), Container.status == "running",
           Container.last_active_at + Container.expires_after_minutes * 60 <= now())
    if container_id is not None:
        due += (Container.id == container_id,)
    expired_ids = list((await c.execute(select(Container.id).where(*due))).scalars())
    if not expired_ids:
        return []
    await c.execute(update(Container).where(Container.id.in_(expired_ids)).values(status="expired", session_id=None))
    blobs = await _own_blobs(c, ContainerFile.container_id.in_(expired_ids))
    await c.execute(delete(ContainerFile).where(ContainerFile.container_id.in_(expired_ids)))
    return blobs


async def create_container(session: AsyncSession, project_id: str, name: str, memory_limit: str,
                           expires_after_minutes: int | None, file_ids: list[str], max_memory_mb: int) -> Container:
    """A new running container holding copies of `file_ids` (files of the project) as `user` files."""
    if memory_limit not in MEMORY_TIERS:
        raise InvalidRequest(f"memory_limit must be one of {list(MEMORY_TIERS)}.", param="memory_limit")
    if MEMORY_TIERS[memory_limit] > max_memory_mb:
        raise InvalidRequest(f"memory_limit {memory_limit} is more than this server allows a container "
                             f"({max_memory_mb} MB).", param="memory_limit")
    files = {}
    if file_ids:
        rows = (await session.execute(select(File).where(File.project_id == project_id,
                                                         File.id.in_(set(file_ids))))).scalars()
        files = {row.id: row for row in rows}
        for file_id in file_ids:
            if file_id not in files:
                raise NotFound("file", file_id)
    t = now()
    row = Container(id=new_id("cntr"), project_id=project_id, name=name, status="running", memory_limit=memory_limit,
                    expires_after_minutes=expires_after_minutes or DEFAULT_EXPIRY_MINUTES, created_at=t,
                    last_active_at=t, session_id=None, thread_id=None)
    session.add(row)
    await session.flush()
    await add_files(await session.connection(), row.id, project_id, [
        NewFile(f"{DATA_DIR}{file.id}-{file.filename}", "user", file.bytes, file.id)
        for file in dict.fromkeys(files[i] for i in file_ids)])
    await session.commit()
    return row


async def find_container(session: AsyncSession, project_id: str, container_id: str,
                         touch: bool = False) -> tuple[Container, list[str]]:
    """The project's container (not a thread's), expired now if due, and touched if running and
    `touch`; with the own blobs of the files it lost if it expired now (commits what it changed)."""
    row = await get_owned(session, Container, "container", container_id, project_id, thread_id=None)
    blobs: list[str] = []
    if row.status != "running":
        return row, blobs
    if row.last_active_at + row.expires_after_minutes * 60 <= now():
        blobs = await expire_due(await session.connection(), project_id, container_id)
        await session.refresh(row)
    elif touch:
        row.last_active_at = now()
    else:
        return row, blobs
    await session.commit()
    return row, blobs


async def list_containers(session: AsyncSession, project_id: str, query: PageQuery,
                          name: str | None) -> tuple[dict, list[str]]:
    """One page of the project's containers (not threads'), optionally of one exact name; listing
    does not touch them. With the own blobs of files lost by containers that expired now."""
    blobs = await expire_due(await session.connection(), project_id)
    await session.commit()
    stmt = select(Container).where(Container.project_id == project_id, Container.thread_id.is_(None))
    if name is not None:
        stmt = stmt.where(Container.name == name)
    return await paginate(session, stmt, Container, query, container_to_dict, order_column=Container.sequence), blobs

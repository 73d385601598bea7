"""Projects and their API keys (stored as SHA-256 hashes of random keys)."""

import hashlib
import secrets

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import NotFound
from codeinterp.store.ids import new_id, now

DEFAULT_PROJECT_ID = "proj_default"
DEFAULT_PROJECT_NAME = "default"
KEY_PREFIX = "sk-ci-"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))  # the key's first characters, to recognise it
    created_at: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer, nullable=True)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def get_or_create_project(session: AsyncSession, name: str) -> Project:
    project = (await session.execute(select(Project).where(Project.name == name))).scalar_one_or_none()
    if project is None:
        project_id = DEFAULT_PROJECT_ID if name == DEFAULT_PROJECT_NAME else new_id("proj")
        project = Project(id=project_id, name=name, created_at=now())
        session.add(project)
        await session.flush()
    return project


async def create_api_key(session: AsyncSession, project_name: str = DEFAULT_PROJECT_NAME) -> tuple[ApiKey, str]:
    """Create a key for the project (created if new). Returns the row and the key, shown only once."""
    project = await get_or_create_project(session, project_name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), project_id=project.id, key_hash=hash_key(key), prefix=key[:12],
                 created_at=now())
    session.add(row)
    await session.flush()
    return row, key


async def project_for_key(session: AsyncSession, key: str) -> str | None:
    """The project id of an unrevoked key, or None."""
    return (await session.execute(
        select(ApiKey.project_id).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )).scalar_one_or_none()


async def list_api_keys(session: AsyncSession) -> list[tuple[ApiKey, str]]:
    """Every key with its project's name, oldest first."""
    rows = await session.execute(
        select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id).order_by(ApiKey.created_at, ApiKey.id))
    return [(key, name) for key, name in rows.all()]


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("key", key_id)
    if row.revoked_at is None:
        row.revoked_at = now()
    return row

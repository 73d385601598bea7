"""Runs and run steps: tables, their contract-shaped dicts (`RunObject`, `RunStepObject`) and what
the API reads and changes of them directly (the run engine creates and drives runs)."""

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base, Database, attribute_columns
from codeinterp.store.errors import InvalidRequest
from codeinterp.store.ids import next_sequence
from codeinterp.store.ownership import get_owned, owned
from codeinterp.store.pagination import PageQuery, paginate

ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
TERMINAL_RUN_STATUSES = ("completed", "failed", "cancelled", "expired", "incomplete")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(64))
    assistant_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancelled_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    required_action: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    last_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    incomplete_details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    model: Mapped[str] = mapped_column(String(256))
    instructions: Mapped[str] = mapped_column(Text, default="")
    additional_instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    tools: Mapped[list] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    usage: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_p: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    truncation_strategy: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tool_choice: Mapped[Any] = mapped_column(JSON, nullable=True)
    parallel_tool_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    response_format: Mapped[Any] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_runs_thread", "project_id", "thread_id", "created_at"),)


class RunStep(Base):
    __tablename__ = "run_steps"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(64))
    assistant_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # order of the step within its run
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    step_details: Mapped[dict] = mapped_column(JSON)
    # What the model was told for each tool call of this step: {tool_call_id: text}.
    tool_results: Mapped[dict] = mapped_column(JSON, default=dict)
    last_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expired_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancelled_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    usage: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_run_steps_run", "project_id", "run_id", "position"),)


RUN_COLUMNS = attribute_columns(Run)


def run_to_dict(row: Run) -> dict:
    return {
        "id": row.id,
        "object": "thread.run",
        "created_at": row.created_at,
        "thread_id": row.thread_id,
        "assistant_id": row.assistant_id,
        "status": row.status,
        "required_action": row.required_action,
        "last_error": row.last_error,
        "expires_at": row.expires_at,
        "started_at": row.started_at,
        "cancelled_at": row.cancelled_at,
        "failed_at": row.failed_at,
        "completed_at": row.completed_at,
        "incomplete_details": row.incomplete_details,
        "model": row.model,
        "instructions": row.instructions or "",
        "tools": row.tools or [],
        "metadata": row.metadata_ or {},
        "usage": row.usage,
        "temperature": row.temperature,
        "top_p": row.top_p,
        "max_prompt_tokens": row.max_prompt_tokens,
        "max_completion_tokens": row.max_completion_tokens,
        "truncation_strategy": row.truncation_strategy,
        "tool_choice": row.tool_choice,
        "parallel_tool_calls": row.parallel_tool_calls,
        "response_format": row.response_format,
    }


def step_to_dict(row: RunStep) -> dict:
    return {
        "id": row.id,
        "object": "thread.run.step",
        "created_at": row.created_at,
        "assistant_id": row.assistant_id,
        "thread_id": row.thread_id,
        "run_id": row.run_id,
        "type": row.type,
        "status": row.status,
        "step_details": row.step_details,
        "last_error": row.last_error,
        "expired_at": row.expired_at,
        "cancelled_at": row.cancelled_at,
        "failed_at": row.failed_at,
        "completed_at": row.completed_at,
        "metadata": row.metadata_ or {},
        "usage": row.usage,
    }


async def refuse_if_running(session: AsyncSession, project_id: str, thread_id: str, doing: str) -> None:
    """InvalidRequest when a run on the thread is active ("Can't {doing} {thread_id} while ...")."""
    active = (await session.execute(select(Run.id).where(
        Run.project_id == project_id, Run.thread_id == thread_id, Run.status.in_(ACTIVE_RUN_STATUSES))
        .limit(1))).scalar()
    if active:
        raise InvalidRequest(f"Can't {doing} {thread_id} while a run {active} is active.")


async def get_run(session: AsyncSession, project_id: str, thread_id: str, run_id: str) -> Run:
    return await get_owned(session, Run, "run", run_id, project_id, thread_id=thread_id)


# What pollers ask for again and again: one statement, no ORM session.
RUN_BY_ID = select(*RUN_COLUMNS).where(Run.id == bindparam("run_id"))


async def read_run(db: Database, project_id: str, thread_id: str, run_id: str) -> dict:
    """The run as a `RunObject` dict, read in one statement."""
    async with db.transaction() as connection:
        run = (await connection.execute(RUN_BY_ID, {"run_id": run_id})).one_or_none()
    return run_to_dict(owned(run, "run", run_id, project_id, thread_id=thread_id))


async def update_run(session: AsyncSession, project_id: str, thread_id: str, run_id: str, body: dict) -> Run:
    """Changes `metadata` (a validated `ModifyRunRequest`; `metadata: null` keeps it)."""
    run = await get_run(session, project_id, thread_id, run_id)
    if body.get("metadata") is not None:
        run.metadata_ = body["metadata"]
    await session.flush()
    return run


async def list_runs(session: AsyncSession, project_id: str, thread_id: str, query: PageQuery) -> dict:
    """The thread's runs (the caller found the thread to be the project's)."""
    stmt = select(Run).where(Run.project_id == project_id, Run.thread_id == thread_id)
    return await paginate(session, stmt, Run, query, run_to_dict, order_column=Run.sequence)


async def list_run_steps(session: AsyncSession, project_id: str, thread_id: str, run_id: str,
                         query: PageQuery) -> dict:
    await get_run(session, project_id, thread_id, run_id)
    stmt = select(RunStep).where(RunStep.project_id == project_id, RunStep.run_id == run_id)
    return await paginate(session, stmt, RunStep, query, step_to_dict, order_column=RunStep.position)


async def get_run_step(session: AsyncSession, project_id: str, thread_id: str, run_id: str, step_id: str) -> RunStep:
    await get_run(session, project_id, thread_id, run_id)
    return await get_owned(session, RunStep, "run step", step_id, project_id, run_id=run_id)


async def count_queued_runs(session: AsyncSession) -> int:
    """Runs of every project waiting to start (the run queue's depth)."""
    return int((await session.execute(select(func.count()).select_from(Run).where(Run.status == "queued"))).scalar_one())


async def is_going_on(db: Database, run_id: str) -> bool:
    """Whether the run is active (from a session of its own: for a long stream)."""
    async with db.session() as session:
        status = (await session.execute(select(Run.status).where(Run.id == run_id))).scalar()
    return status in ACTIVE_RUN_STATUSES

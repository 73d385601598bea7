"""/v1/organization/usage/code_interpreter_sessions: sessions per time bucket, in OpenAI's
`UsageResponse` shape. A key sees its own project's usage. Buckets start at `start_time`;
a bucket without sessions has no results; `next_page` is the start of the next page's first bucket."""

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.store.errors import InvalidRequest
from codeinterp.store.ids import now
from codeinterp.store.usage import sessions_by_bucket

router = APIRouter(prefix="/v1/organization/usage", tags=["Usage"])

LATEST_TIME = 2**40  # Unix seconds far past any session (year 36812)
BUCKETS = {"1m": (60, 60, 1440), "1h": (3600, 24, 168), "1d": (86400, 7, 31)}  # seconds, default, max


class UsageCodeInterpreterSessionsResult(BaseModel):
    object: Literal["organization.usage.code_interpreter_sessions.result"]
    num_sessions: int
    project_id: str | None = None


class UsageTimeBucket(BaseModel):
    object: Literal["bucket"]
    start_time: int
    end_time: int
    results: list[UsageCodeInterpreterSessionsResult]


class UsageResponse(BaseModel):
    object: Literal["page"]
    data: list[UsageTimeBucket]
    has_more: bool
    next_page: str | None


@router.get("/code_interpreter_sessions", response_model=UsageResponse, operation_id="usage-code-interpreter-sessions",
            summary="Get code interpreter sessions usage details for the project of the key.")
async def code_interpreter_sessions(
    start_time: int,
    end_time: int | None = None,
    bucket_width: Literal["1m", "1h", "1d"] = "1d",
    project_ids: list[str] | None = Query(default=None),
    group_by: list[Literal["project_id"]] | None = Query(default=None),
    limit: int | None = None,
    page: str | None = None,
    project_id: str = Depends(current_project),
    session: AsyncSession = Depends(db_session),
) -> dict:
    width, default_limit, max_limit = BUCKETS[bucket_width]
    if limit is None:
        limit = default_limit
    if not 1 <= limit <= max_limit:
        raise InvalidRequest(f"limit must be between 1 and {max_limit} for bucket_width={bucket_width}.",
                             param="limit")
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if value is not None and not 0 <= value < LATEST_TIME:
            raise InvalidRequest(f"{name} must be a Unix time in seconds.", param=name)
    if page is not None:
        if not page.isdigit() or not start_time <= int(page) < LATEST_TIME:
            raise InvalidRequest("page is not a cursor this server gave.", param="page")
        start_time = int(page)
    end = end_time if end_time is not None else now() + 1
    if end <= start_time:
        raise InvalidRequest("end_time must be after start_time.", param="end_time")
    counts = {}
    if project_ids is None or project_id in project_ids:
        counts = await sessions_by_bucket(session, start_time, min(end, start_time + limit * width), width,
                                          [project_id])
    buckets = []
    for begin in range(start_time, min(end, start_time + limit * width), width):
        per_project = counts.get(begin, {})
        if group_by:
            results = [_result(count, pid) for pid, count in sorted(per_project.items())]
        else:
            results = [_result(sum(per_project.values()))] if per_project else []
        buckets.append({"object": "bucket", "start_time": begin, "end_time": begin + width, "results": results})
    following = start_time + limit * width
    has_more = following < end
    return {"object": "page", "data": buckets, "has_more": has_more,
            "next_page": str(following) if has_more else None}


def _result(num_sessions: int, project_id: str | None = None) -> dict:
    return {"object": "organization.usage.code_interpreter_sessions.result", "num_sessions": num_sessions,
            "project_id": project_id}

"""The Files API: /v1/files (upload, list, retrieve, delete, content)."""

import json
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.errors import APIError
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.common import ErrorResponse
from codeinterp.api.schemas.files import (
    CREATE_FILE_REQUEST_SCHEMA, DeleteFileResponse, FileExpirationAfter, ListFilesResponse, OpenAIFile,
)
from codeinterp.api.uploads import parse_upload
from codeinterp.store import files as file_store
from codeinterp.store.errors import InvalidRequest, NotFound, QuotaExceeded
from codeinterp.store.files import file_to_dict
from codeinterp.store.ids import new_id

router = APIRouter(prefix="/v1", tags=["Files"], responses={
    status: {"model": ErrorResponse, "description": description} for status, description in (
        (400, "Bad request"), (401, "Missing or wrong API key"), (403, "The project's storage quota is full"),
        (404, "No such file"), (413, "File too large"))})

_FILE_RESPONSE = {"response_model": OpenAIFile, "response_model_exclude_none": True}


def _expires_after(fields: dict[str, str]) -> int | None:
    """Seconds after its creation that the file expires (None: never)."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if "expires_after" in fields:
        try:
            value = json.loads(fields["expires_after"])
            anchor, seconds = value.get("anchor"), value.get("seconds")
        except (ValueError, AttributeError):
            raise InvalidRequest("'expires_after' must be an object with 'anchor' and 'seconds'.",
                                 param="expires_after") from None
    if anchor is None and seconds is None:
        return None
    try:
        policy = FileExpirationAfter(anchor=anchor, seconds=seconds)
    except ValueError:
        raise InvalidRequest("'expires_after' needs anchor 'created_at' and seconds between 3600 and 2592000.",
                             param="expires_after") from None
    return policy.seconds


@router.post("/files", operation_id="createFile", openapi_extra={
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": CREATE_FILE_REQUEST_SCHEMA}}}},
    **_FILE_RESPONSE)
async def create_file(request: Request, project_id: str = Depends(current_project),
                      session: AsyncSession = Depends(db_session)) -> dict:
    settings = request.app.state.settings
    store = file_store.blob_store()
    quota = settings.project_storage_mb * 1024 * 1024
    room = quota - await file_store.storage_used(session, project_id)
    await session.commit()  # the connection is not held while the body arrives
    upload = await parse_upload(request, store, "file", settings.max_upload_bytes, room=max(room, 0))
    try:
        if upload.over_room:
            raise QuotaExceeded(quota)
        if upload.blob is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        purpose = upload.fields.get("purpose")
        if not purpose:
            raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose")
        file_store.check_upload(upload.filename, purpose)
        expires_after = _expires_after(upload.fields)
        file_id = new_id("file")
        await upload.blob.commit(file_id)
    except BaseException:
        await upload.discard()
        raise
    try:
        row = await file_store.add_file_row_within_quota(session, file_id, project_id, upload.filename,
                                                         upload.blob.size, purpose, quota, expires_after)
        await session.commit()
    except BaseException:
        await session.rollback()
        await store.delete_async(file_id)
        raise
    return file_to_dict(row)


@router.get("/files", operation_id="listFiles", response_model=ListFilesResponse, response_model_exclude_none=True)
async def list_files(purpose: str | None = None,
                     query: ListQuery = Depends(ListQuery.with_limits(default=10000, maximum=10000)),
                     project_id: str = Depends(current_project), session: AsyncSession = Depends(db_session)) -> dict:
    if query.before:
        raise APIError(400, "Unknown parameter: 'before'.", param="before", code="unknown_parameter")
    return await file_store.list_files(session, project_id, query, purpose)


@router.get("/files/{file_id}", operation_id="retrieveFile", **_FILE_RESPONSE)
async def retrieve_file(file_id: str, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> dict:
    return file_to_dict(await file_store.get_file(session, project_id, file_id))


@router.delete("/files/{file_id}", operation_id="deleteFile", response_model=DeleteFileResponse)
async def delete_file(file_id: str, project_id: str = Depends(current_project),
                      session: AsyncSession = Depends(db_session)) -> dict:
    await file_store.delete_file(session, project_id, file_id)
    return {"id": file_id, "object": "file", "deleted": True}


def attachment(filename: str) -> str:
    """A Content-Disposition naming the file (RFC 5987 encoded when it is not plain ASCII)."""
    quoted = quote(filename)
    return f"attachment; filename*=utf-8''{quoted}" if quoted != filename else f'attachment; filename="{filename}"'


@router.get("/files/{file_id}/content", operation_id="downloadFile", response_class=StreamingResponse, responses={
    200: {"description": "OK", "content": {"application/json": {"schema": {"type": "string"}}}}})
async def download_file(file_id: str, project_id: str = Depends(current_project),
                        session: AsyncSession = Depends(db_session)) -> StreamingResponse:
    row = await file_store.get_file(session, project_id, file_id)
    blob = await file_store.blob_store().stat(row.id)
    if blob is None:
        raise NotFound("file", file_id)
    return StreamingResponse(blob.chunks(), media_type=row.mime_type, headers={
        "content-length": str(blob.size), "content-disposition": attachment(row.filename.rsplit("/", 1)[-1])})

"""/v1/containers/{container_id}/files: create (multipart `file` or JSON `file_id`), list,
retrieve, delete, content. The containers service puts files into a running session."""

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from codeinterp.api.auth import current_project
from codeinterp.api.errors import APIError
from codeinterp.api.files import attachment
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.common import ErrorResponse
from codeinterp.api.schemas.containers import (
    CREATE_CONTAINER_FILE_SCHEMA, ContainerFileListResource, ContainerFileResource, CreateContainerFileBody,
    DeleteContainerFileResponse,
)
from codeinterp.api.uploads import Body, parse_upload
from codeinterp.store import container_files as cfiles
from codeinterp.store import files as file_store
from codeinterp.store.containers import NewFile
from codeinterp.store.errors import InvalidRequest, NotFound, QuotaExceeded
from codeinterp.store.ids import new_id

router = APIRouter(prefix="/v1/containers", tags=["Containers"], responses={
    status: {"model": ErrorResponse, "description": description} for status, description in (
        (400, "Bad request"), (401, "Missing or wrong API key"), (403, "The project's storage quota is full"),
        (404, "No such container or container file"), (413, "File too large"))})

MB = 1024 * 1024
MAX_JSON_BYTES = 64 * 1024


@router.post("/{container_id}/files", operation_id="CreateContainerFile", response_model=ContainerFileResource,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": CREATE_CONTAINER_FILE_SCHEMA},
                 "multipart/form-data": {"schema": CREATE_CONTAINER_FILE_SCHEMA}}}})
async def create_container_file(container_id: str, request: Request,
                                project_id: str = Depends(current_project)) -> dict:
    containers = request.app.state.containers
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await containers.add_file(project_id, container_id, file_id=await _file_id(request))
    try:  # before the body is read: a file for no container is not received
        await containers.ensure_running(project_id, container_id)
    except BaseException:
        await Body(request).drain()
        raise
    settings = request.app.state.settings
    store = file_store.blob_store()
    quota = settings.project_storage_mb * MB
    async with request.app.state.database.session() as session:
        room = quota - await file_store.storage_used(session, project_id)
    upload = await parse_upload(request, store, "file", settings.max_upload_bytes, room=max(room, 0))
    cfile_id = new_id("cfile")
    try:
        if upload.over_room:
            raise QuotaExceeded(quota)
        if upload.blob is None:
            raise InvalidRequest("Missing required parameter: 'file' (or send JSON with 'file_id').", param="file")
        await upload.blob.commit(cfile_id)
    except BaseException:
        await upload.discard()
        raise
    try:
        return await containers.add_file(project_id, container_id, NewFile(
            cfiles.upload_path(upload.filename), "user", upload.blob.size, id=cfile_id))
    except BaseException:
        await store.delete_async(cfile_id)
        raise


async def _file_id(request: Request) -> str:
    """The `file_id` of a JSON body (read up to MAX_JSON_BYTES: this path is exempt from the body limit)."""
    body, data = Body(request), bytearray()
    async for chunk in body.chunks():
        data += chunk
        if len(data) > MAX_JSON_BYTES:
            await body.drain()
            raise APIError(413, f"The JSON body is over {MAX_JSON_BYTES} bytes.")
    try:
        return CreateContainerFileBody.model_validate(json.loads(data)).file_id
    except (ValueError, ValidationError):  # (a JSONDecodeError is a ValueError)
        raise InvalidRequest("Send multipart/form-data with a 'file', or JSON with a 'file_id' string.",
                             param="file_id") from None


@router.get("/{container_id}/files", operation_id="ListContainerFiles", response_model=ContainerFileListResource)
async def list_container_files(container_id: str, request: Request, query: ListQuery = Depends(ListQuery),
                               project_id: str = Depends(current_project)) -> dict:
    return await request.app.state.containers.list_files(project_id, container_id, query)


@router.get("/{container_id}/files/{file_id}", operation_id="RetrieveContainerFile",
            response_model=ContainerFileResource)
async def retrieve_container_file(container_id: str, file_id: str, request: Request,
                                  project_id: str = Depends(current_project)) -> dict:
    return cfiles.cfile_to_dict(await request.app.state.containers.get_file(project_id, container_id, file_id))


@router.delete("/{container_id}/files/{file_id}", operation_id="DeleteContainerFile",
               response_model=DeleteContainerFileResponse)
async def delete_container_file(container_id: str, file_id: str, request: Request,
                                project_id: str = Depends(current_project)) -> dict:
    await request.app.state.containers.delete_file(project_id, container_id, file_id)
    return {"id": file_id, "object": "container.file.deleted", "deleted": True}


@router.get("/{container_id}/files/{file_id}/content", operation_id="RetrieveContainerFileContent",
            response_class=StreamingResponse, responses={200: {"description": "The file's bytes", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def container_file_content(container_id: str, file_id: str, request: Request,
                                 project_id: str = Depends(current_project)) -> StreamingResponse:
    row = await request.app.state.containers.get_file(project_id, container_id, file_id)
    blob = await cfiles.stored_blob(row)
    if blob is None:  # a file copied in by id whose Files API file was deleted since
        raise NotFound("container file", file_id)
    name = row.path.rsplit("/", 1)[-1]
    return StreamingResponse(blob.chunks(), media_type=file_store.mime_type_for(name), headers={
        "content-length": str(blob.size), "content-disposition": attachment(name)})

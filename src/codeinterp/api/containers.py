"""/v1/containers: create, list, retrieve, delete (the containers service owns their sessions)."""

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.api.auth import current_project
from codeinterp.api.deps import db_session
from codeinterp.api.pagination import ListQuery
from codeinterp.api.schemas.containers import (
    ContainerListResource, ContainerResource, CreateContainerBody, DeleteContainerResponse,
)
from codeinterp.store import containers as service

router = APIRouter(prefix="/v1/containers", tags=["Containers"])


@router.post("", operation_id="CreateContainer", response_model=ContainerResource)
async def create_container(body: CreateContainerBody, request: Request, project_id: str = Depends(current_project),
                           session: AsyncSession = Depends(db_session)) -> dict:
    settings = request.app.state.settings
    row = await service.create_container(
        session, project_id, body.name, body.memory_limit,
        body.expires_after.minutes if body.expires_after else None, body.file_ids,
        service.MEMORY_TIERS[settings.container_max_memory])
    return service.container_to_dict(row)


@router.get("", operation_id="ListContainers", response_model=ContainerListResource)
async def list_containers(request: Request, query: ListQuery = Depends(ListQuery), name: str | None = Query(None),
                          project_id: str = Depends(current_project)) -> dict:
    return await request.app.state.containers.list_containers(project_id, query, name)


@router.get("/{container_id}", operation_id="RetrieveContainer", response_model=ContainerResource)
async def retrieve_container(container_id: str, request: Request, project_id: str = Depends(current_project)) -> dict:
    return await request.app.state.containers.retrieve(project_id, container_id)


@router.delete("/{container_id}", operation_id="DeleteContainer", response_model=DeleteContainerResponse)
async def delete_container(container_id: str, request: Request, project_id: str = Depends(current_project)) -> dict:
    await request.app.state.containers.delete(project_id, container_id)
    return {"id": container_id, "object": "container.deleted", "deleted": True}

"""Containers (`/v1/containers`): request bodies and the container object, as the contract names them."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from codeinterp.api.schemas.common import ListResponse, RequestModel, invalid

MemoryLimit = Literal["1g", "4g", "16g", "64g"]
MAX_CONTAINER_FILES = 100


class ContainerExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    minutes: Annotated[int, Field(ge=1, le=24 * 60)]


class ContainerNetworkPolicy(BaseModel):
    type: str

    @field_validator("type")
    @classmethod
    def only_disabled(cls, value: str) -> str:
        if value != "disabled":
            raise invalid("Only the 'disabled' network policy is supported: sandboxes have no network.")
        return value


class CreateContainerBody(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    file_ids: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=256)]],
                        Field(max_length=MAX_CONTAINER_FILES)] = []
    expires_after: ContainerExpiresAfter | None = None
    memory_limit: MemoryLimit = "1g"
    network_policy: ContainerNetworkPolicy | None = None
    skills: list[Any] | None = None

    @field_validator("skills")
    @classmethod
    def no_skills(cls, value: list | None) -> list | None:
        if value:
            raise invalid("Skills are not supported by this server.")
        return value


class ExpiresAfter(BaseModel):
    anchor: Literal["last_active_at"]
    minutes: int


class NetworkPolicy(BaseModel):
    type: Literal["disabled"]  # sandboxes have no network


class ContainerResource(BaseModel):
    id: str
    object: Literal["container"]
    name: str
    created_at: int
    status: Literal["running", "expired"]
    last_active_at: int
    expires_after: ExpiresAfter
    memory_limit: MemoryLimit
    network_policy: NetworkPolicy


class ContainerListResource(ListResponse[ContainerResource]):
    pass


class DeleteContainerResponse(BaseModel):
    id: str
    object: Literal["container.deleted"]
    deleted: bool


class CreateContainerFileBody(RequestModel):
    """The JSON form of a container file's creation (the multipart form sends `file` instead)."""

    file_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]


CREATE_CONTAINER_FILE_SCHEMA = {
    "type": "object", "properties": {"file_id": {"type": "string"}, "file": {"type": "string", "format": "binary"}}}


class ContainerFileResource(BaseModel):
    id: str
    object: Literal["container.file"]
    container_id: str
    created_at: int
    bytes: int
    path: str
    source: str


class ContainerFileListResource(ListResponse[ContainerFileResource]):
    pass


class DeleteContainerFileResponse(BaseModel):
    id: str
    object: Literal["container.file.deleted"]
    deleted: bool

"""Threads: request and response models written from the contract (`CreateThreadRequest`,
`ModifyThreadRequest`, `ThreadObject`, `DeleteThreadResponse`)."""

from typing import Literal

from pydantic import BaseModel

from codeinterp.api.schemas.assistants import ToolResources
from codeinterp.api.schemas.common import Metadata, RequestModel
from codeinterp.api.schemas.messages import CreateMessageRequest
from codeinterp.api.schemas.tools import ToolResourcesParam


class CreateThreadRequest(RequestModel):
    messages: list[CreateMessageRequest] | None = None
    tool_resources: ToolResourcesParam | None = None
    metadata: Metadata | None = None


class ModifyThreadRequest(RequestModel):
    tool_resources: ToolResourcesParam | None = None
    metadata: Metadata | None = None


class ThreadObject(BaseModel):
    id: str
    object: Literal["thread"]
    created_at: int
    tool_resources: ToolResources | None
    metadata: dict[str, str] | None


class DeleteThreadResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["thread.deleted"]

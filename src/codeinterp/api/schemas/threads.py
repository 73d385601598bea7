"""Threads: request and response models written from the contract (`CreateThreadRequest`,
`ModifyThreadRequest`, `ThreadObject`, `DeleteThreadResponse`)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from codeinterp.api.schemas.assistants import ToolResources


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateThreadRequest(Request):
    # Each message is a `CreateMessageRequest`, checked by the store so that errors name
    # the parameter, e.g. `messages[1].content`.
    messages: list[dict[str, Any]] | None = None
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class ModifyThreadRequest(Request):
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


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

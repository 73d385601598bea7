"""Assistants: request and response models written from the contract (`CreateAssistantRequest`,
`ModifyAssistantRequest`, `AssistantObject`, `ListAssistantsResponse`, `DeleteAssistantResponse`).

Types and bounds are checked here; references to other objects (file ids) and the tools we
support are checked by the store, which every path of creation shares."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAssistantRequest(Request):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256000)
    reasoning_effort: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=128)
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Literal["auto"] | dict[str, Any] | None = None


class ModifyAssistantRequest(Request):
    model: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256000)
    reasoning_effort: str | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Literal["auto"] | dict[str, Any] | None = None


class AssistantObject(BaseModel):
    id: str
    object: Literal["assistant"]
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None
    temperature: float | None = None
    top_p: float | None = None
    response_format: Literal["auto"] | dict[str, Any] | None = None


class ListAssistantsResponse(BaseModel):
    object: Literal["list"]
    data: list[AssistantObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeleteAssistantResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["assistant.deleted"]

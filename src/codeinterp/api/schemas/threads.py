"""Threads and messages: request and response models written from the contract
(`CreateThreadRequest`, `ModifyThreadRequest`, `ThreadObject`, `DeleteThreadResponse`,
`CreateMessageRequest`, `ModifyMessageRequest`, `MessageObject`, `ListMessagesResponse`,
`DeleteMessageResponse`)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateMessageRequest(Request):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class ModifyMessageRequest(Request):
    metadata: dict[str, str] | None = None


class CreateThreadRequest(Request):
    messages: list[CreateMessageRequest] | None = None
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class ModifyThreadRequest(Request):
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class ThreadObject(BaseModel):
    id: str
    object: Literal["thread"]
    created_at: int
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str] | None


class DeleteThreadResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["thread.deleted"]


class MessageObject(BaseModel):
    id: str
    object: Literal["thread.message"]
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]] | None
    metadata: dict[str, str] | None


class ListMessagesResponse(BaseModel):
    object: Literal["list"]
    data: list[MessageObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeleteMessageResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["thread.message.deleted"]

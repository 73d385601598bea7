"""Messages: request and response models written from the contract (`CreateMessageRequest`,
`ModifyMessageRequest`, `MessageObject` and its `MessageContent*` blocks, `ListMessagesResponse`,
`DeleteMessageResponse`).

`content` and `attachments` are checked by the store (a string or content parts; file ids of
the project), which names the parameter at fault, e.g. `content[1].image_file.file_id`."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codeinterp.api.schemas.assistants import AssistantToolsCode


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateMessageRequest(Request):
    role: Literal["user", "assistant"]
    content: Any = Field(description="A string, or an array of text, image_file and image_url parts.")
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class ModifyMessageRequest(Request):
    metadata: dict[str, str] | None = None


class FilePath(BaseModel):
    file_id: str


class MessageContentTextAnnotationsFilePathObject(BaseModel):
    type: Literal["file_path"]
    text: str
    file_path: FilePath
    start_index: int = Field(ge=0)
    end_index: int = Field(ge=0)


class FileCitation(BaseModel):
    file_id: str


class MessageContentTextAnnotationsFileCitationObject(BaseModel):
    type: Literal["file_citation"]
    text: str
    file_citation: FileCitation
    start_index: int = Field(ge=0)
    end_index: int = Field(ge=0)


Annotation = Annotated[MessageContentTextAnnotationsFileCitationObject | MessageContentTextAnnotationsFilePathObject,
                       Field(discriminator="type")]


class Text(BaseModel):
    value: str
    annotations: list[Annotation]


class MessageContentTextObject(BaseModel):
    type: Literal["text"]
    text: Text


class ImageFile(BaseModel):
    file_id: str
    detail: Literal["auto", "low", "high"] = "auto"


class MessageContentImageFileObject(BaseModel):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageUrl(BaseModel):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"


class MessageContentImageUrlObject(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class MessageContentRefusalObject(BaseModel):
    type: Literal["refusal"]
    refusal: str


MessageContent = Annotated[
    MessageContentImageFileObject | MessageContentImageUrlObject | MessageContentTextObject
    | MessageContentRefusalObject, Field(discriminator="type")]


class MessageAttachment(BaseModel):
    file_id: str
    tools: list[AssistantToolsCode]


class IncompleteDetails(BaseModel):
    reason: Literal["content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed"]


class MessageObject(BaseModel):
    id: str
    object: Literal["thread.message"]
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: IncompleteDetails | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[MessageContent]
    assistant_id: str | None
    run_id: str | None
    attachments: list[MessageAttachment] | None
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

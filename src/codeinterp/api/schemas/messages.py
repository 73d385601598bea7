"""Messages: request and response models written from the contract (`CreateMessageRequest`,
`ModifyMessageRequest`, `MessageObject` and its `MessageContent*` blocks, `ListMessagesResponse`,
`DeleteMessageResponse`). File ids are checked against the project by the message service,
which names the parameter at fault, e.g. `content[1].image_file.file_id`."""

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from codeinterp.api.schemas.assistants import AssistantToolsCode
from codeinterp.api.schemas.common import ListResponse, Metadata, RequestModel, invalid

MAX_TEXT = 256_000  # characters in one text part of a message, as OpenAI allows
MAX_URL = 2_000_000
ImageDetail = Literal["auto", "low", "high"]


class ImageFileParam(BaseModel):
    file_id: str = Field(min_length=1)
    detail: ImageDetail = "auto"


class ImageUrlParam(BaseModel):
    url: str = Field(max_length=MAX_URL)
    detail: ImageDetail = "auto"

    @field_validator("url")
    @classmethod
    def _web_or_data(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https", "data"):
            raise invalid("An image_url part needs 'image_url.url', an http(s) or data URL.")
        return url


class MessageContentPartParam(BaseModel):
    """A text, image_file or image_url part: `type` says which of the other fields it carries."""

    type: Literal["text", "image_file", "image_url"]
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    image_file: ImageFileParam | None = None
    image_url: ImageUrlParam | None = None

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, part: Any) -> Any:
        if not isinstance(part, dict):
            raise invalid("Each content part must be of type 'text', 'image_file' or 'image_url'.", at="type")
        return part

    @model_validator(mode="after")
    def _carries_its_type(self) -> "MessageContentPartParam":
        if getattr(self, self.type) is None:
            raise invalid(f"A {self.type} part needs '{self.type}'.", at=self.type)
        return self


def _text_as_part(content: Any) -> Any:
    if isinstance(content, str):
        if len(content) > MAX_TEXT:
            raise invalid(f"content can be at most {MAX_TEXT} characters long.")
        return [{"type": "text", "text": content}]
    return content


MessageContentParam = Annotated[list[MessageContentPartParam], Field(min_length=1), BeforeValidator(_text_as_part),
                                Field(description="A string, or an array of text, image_file and image_url parts.")]


ATTACHMENT_TOOLS = ("code_interpreter", "file_search")


class AttachmentToolParam(BaseModel):
    type: str

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, tool: Any) -> Any:
        if not isinstance(tool, dict):
            raise invalid("An attachment's tool must be an object with a 'type'.", at="type")
        return tool

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        # A file attached for file_search is put in /mnt/data like any other: retrieval itself
        # is not offered, but clients that attach files this way by default keep working.
        if kind not in ATTACHMENT_TOOLS:
            raise invalid(f"Invalid attachment tool type {kind!r}: expected 'code_interpreter' or 'file_search'.")
        return kind


class AttachmentParam(BaseModel):
    file_id: str = Field(min_length=1)
    tools: list[AttachmentToolParam] | None = None

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, attachment: Any) -> Any:
        if not isinstance(attachment, dict):
            raise invalid("Each attachment needs a file_id.", at="file_id")
        return attachment


class CreateMessageRequest(RequestModel):
    role: Literal["user", "assistant"]
    content: MessageContentParam
    attachments: list[AttachmentParam] | None = None
    metadata: Metadata | None = None


class ModifyMessageRequest(RequestModel):
    metadata: Metadata | None = None


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


class AssistantToolsFileSearchTypeOnly(BaseModel):
    type: Literal["file_search"]


class MessageAttachment(BaseModel):
    file_id: str
    tools: list[Annotated[AssistantToolsCode | AssistantToolsFileSearchTypeOnly, Field(discriminator="type")]]


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


class ListMessagesResponse(ListResponse[MessageObject]):
    pass


class DeleteMessageResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["thread.message.deleted"]

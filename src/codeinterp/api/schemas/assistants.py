"""Assistants: request and response models written from the contract (`CreateAssistantRequest`,
`ModifyAssistantRequest`, `AssistantObject`, `ListAssistantsResponse`, `DeleteAssistantResponse`).
File ids are checked against the project by the assistant service."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codeinterp.api.schemas.common import ListResponse, Metadata, RequestModel
from codeinterp.api.schemas.tools import AssistantTools, FunctionObject, ResponseFormatParam, ToolResourcesParam

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
MAX_INSTRUCTIONS = 256_000


class CreateAssistantRequest(RequestModel):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    reasoning_effort: ReasoningEffort | None = None
    tools: AssistantTools = Field(default_factory=list)
    tool_resources: ToolResourcesParam | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormatParam = None


class ModifyAssistantRequest(RequestModel):
    model: str | None = Field(default=None, min_length=1, max_length=256)
    reasoning_effort: ReasoningEffort | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: AssistantTools | None = None
    tool_resources: ToolResourcesParam | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormatParam = None


class AssistantToolsCode(BaseModel):
    type: Literal["code_interpreter"]


class AssistantToolsFunction(BaseModel):
    type: Literal["function"]
    function: FunctionObject


AssistantTool = Annotated[AssistantToolsCode | AssistantToolsFunction, Field(discriminator="type")]


class CodeInterpreterResources(BaseModel):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class ToolResources(BaseModel):
    code_interpreter: CodeInterpreterResources | None = Field(default=None, exclude_if=lambda v: v is None)


class ResponseFormatText(BaseModel):
    type: Literal["text"]


class ResponseFormatJsonObject(BaseModel):
    type: Literal["json_object"]


class JsonSchema(BaseModel):
    description: str | None = None
    name: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ResponseFormatJsonSchema(BaseModel):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
                           Field(discriminator="type")]


class AssistantObject(BaseModel):
    id: str
    object: Literal["assistant"]
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[AssistantTool]
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None
    temperature: float | None = None
    top_p: float | None = None
    response_format: Literal["auto"] | ResponseFormat | None = None


class ListAssistantsResponse(ListResponse[AssistantObject]):
    pass


class DeleteAssistantResponse(BaseModel):
    id: str
    deleted: bool
    object: Literal["assistant.deleted"]

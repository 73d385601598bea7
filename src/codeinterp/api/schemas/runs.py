"""Runs and run steps: request and response models written from the contract
(`CreateRunRequest`, `CreateThreadAndRunRequest`, `SubmitToolOutputsRunRequest`,
`ModifyRunRequest`, `RunObject`, `RunStepObject`, `ListRunsResponse`, `ListRunStepsResponse`)."""

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from codeinterp.api.schemas.common import ListResponse, Metadata, RequestModel
from codeinterp.api.schemas.messages import CreateMessageRequest
from codeinterp.api.schemas.threads import CreateThreadRequest
from codeinterp.api.schemas.tools import FunctionObject, ToolResourcesParam


class CodeInterpreterTool(BaseModel):
    type: Literal["code_interpreter"]


class FileSearchTool(BaseModel):
    type: Literal["file_search"]
    file_search: dict[str, Any] | None = None


class FunctionTool(BaseModel):
    type: Literal["function"]
    function: FunctionObject


Tool = Annotated[Union[CodeInterpreterTool, FileSearchTool, FunctionTool], Field(discriminator="type")]


class TruncationObject(BaseModel):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


class NamedToolFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedToolFunction | None = None


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]


class ResponseFormatObject(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]


ResponseFormat = Union[Literal["auto"], ResponseFormatObject]


class RunOptions(RequestModel):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] | None = Field(default=None, max_length=20)
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=256)
    truncation_strategy: TruncationObject | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class CreateRunRequest(RunOptions):
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    additional_instructions: str | None = None
    additional_messages: list[CreateMessageRequest] | None = None


class CreateThreadAndRunRequest(RunOptions):
    thread: CreateThreadRequest | None = None
    tool_resources: ToolResourcesParam | None = None


class ToolOutput(BaseModel):
    tool_call_id: str | None = None
    output: str | None = None


class SubmitToolOutputsRunRequest(RequestModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class ModifyRunRequest(RequestModel):
    metadata: Metadata | None = None


# ---- responses ------------------------------------------------------------------------------


class ToolCallFunction(BaseModel):
    name: str
    arguments: str


class RunToolCallObject(BaseModel):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class SubmitToolOutputs(BaseModel):
    tool_calls: list[RunToolCallObject]


class RequiredAction(BaseModel):
    type: Literal["submit_tool_outputs"]
    submit_tool_outputs: SubmitToolOutputs


class LastError(BaseModel):
    code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
    message: str


class IncompleteDetails(BaseModel):
    reason: Literal["max_completion_tokens", "max_prompt_tokens"] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunObject(BaseModel):
    id: str
    object: Literal["thread.run"]
    created_at: int
    thread_id: str
    assistant_id: str
    status: Literal["queued", "in_progress", "requires_action", "cancelling", "cancelled", "failed",
                    "completed", "incomplete", "expired"]
    required_action: RequiredAction | None
    last_error: LastError | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: IncompleteDetails | None
    model: str
    instructions: str
    tools: list[Tool]
    metadata: dict[str, str]
    usage: Usage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: TruncationObject | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool
    response_format: ResponseFormat | None


class MessageCreation(BaseModel):
    message_id: str


class MessageCreationDetails(BaseModel):
    type: Literal["message_creation"]
    message_creation: MessageCreation


class LogsOutput(BaseModel):
    type: Literal["logs"]
    logs: str


class ImageOutputFile(BaseModel):
    file_id: str


class ImageOutput(BaseModel):
    type: Literal["image"]
    image: ImageOutputFile


class CodeInterpreter(BaseModel):
    input: str
    outputs: list[Annotated[Union[LogsOutput, ImageOutput], Field(discriminator="type")]]


class CodeInterpreterToolCall(BaseModel):
    id: str
    type: Literal["code_interpreter"]
    code_interpreter: CodeInterpreter


class FunctionCall(BaseModel):
    name: str
    arguments: str
    output: str | None


class FunctionToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: FunctionCall


class ToolCallsDetails(BaseModel):
    type: Literal["tool_calls"]
    tool_calls: list[Annotated[Union[CodeInterpreterToolCall, FunctionToolCall], Field(discriminator="type")]]


class StepLastError(BaseModel):
    code: Literal["server_error", "rate_limit_exceeded"]
    message: str


class RunStepObject(BaseModel):
    id: str
    object: Literal["thread.run.step"]
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: Literal["message_creation", "tool_calls"]
    status: Literal["in_progress", "cancelled", "failed", "completed", "expired"]
    step_details: Annotated[Union[MessageCreationDetails, ToolCallsDetails], Field(discriminator="type")]
    last_error: StepLastError | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]
    usage: Usage | None


class ListRunsResponse(ListResponse[RunObject]):
    pass


class ListRunStepsResponse(ListResponse[RunStepObject]):
    pass

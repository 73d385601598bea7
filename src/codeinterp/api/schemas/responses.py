"""Responses (`/v1/responses`): the create body, as the contract names it, checked at the edge.

Fields this server has no use for but that do not change what the caller asked (`user`,
`service_tier`, `prompt_cache_key`, `reasoning`, `truncation: disabled`, ...) are accepted and
ignored; fields that would change the meaning of the request (`conversation`, `prompt`,
`truncation: auto`, other built-in tools) are refused with a 400 naming them.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from codeinterp.api.schemas.common import ListResponse, Metadata, invalid
from codeinterp.api.schemas.containers import MemoryLimit

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_INPUT_ITEMS = 2000
MAX_TOOLS = 128


class AutoContainer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["auto"]
    file_ids: Annotated[list[Id], Field(max_length=100)] = []
    memory_limit: MemoryLimit | None = None


class CodeInterpreterTool(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["code_interpreter"]
    container: Annotated[str, StringConstraints(min_length=1, max_length=64)] | AutoContainer


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


def _tool(value: Any, n: int) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise invalid("Each tool must be an object with a `type`.", at=str(n))
    kind = value["type"]
    if kind == "code_interpreter":
        if "container" not in value:
            raise invalid("The code_interpreter tool needs a `container`: a container id or "
                          "{\"type\": \"auto\"}.", at=f"{n}.container")
        return CodeInterpreterTool.model_validate(value).model_dump(exclude_none=True)
    if kind == "function":
        return FunctionTool.model_validate(value).model_dump(exclude_none=True)
    raise invalid(f"The tool type '{kind}' is not supported by this server; it offers "
                  "'code_interpreter' and 'function' tools.", at=f"{n}.type")


IGNORED_INCLUDES = {"reasoning.encrypted_content", "message.output_text.logprobs", "message.input_image.image_url",
                    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
                    "computer_call_output.output.image_url"}
INCLUDES = IGNORED_INCLUDES | {"code_interpreter_call.outputs"}


class CreateResponseBody(BaseModel):
    """POST /v1/responses. Unknown top-level fields are refused."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    input: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_INPUT_ITEMS)] | None = None
    instructions: str | list[dict[str, Any]] | None = None
    tools: Annotated[list[Any], Field(max_length=MAX_TOOLS)] = []
    tool_choice: str | dict[str, Any] | None = None
    include: list[str] | None = None
    previous_response_id: Id | None = None
    store: bool | None = True
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    background: bool | None = False
    metadata: Metadata | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    parallel_tool_calls: bool | None = True
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["disabled", "auto"] | None = None
    user: str | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    top_logprobs: int | None = None
    moderation: Any = None
    context_management: Any = None
    conversation: Any = None
    prompt: Any = None

    @field_validator("tools")
    @classmethod
    def known_tools(cls, tools: list) -> list[dict]:
        checked = [_tool(tool, n) for n, tool in enumerate(tools)]
        if sum(t["type"] == "code_interpreter" for t in checked) > 1:
            raise invalid("At most one code_interpreter tool can be given.")
        return checked

    @field_validator("include")
    @classmethod
    def known_includes(cls, include: list[str] | None) -> list[str] | None:
        for n, value in enumerate(include or []):
            if value not in INCLUDES:
                raise invalid(f"'{value}' is not a value `include` accepts.", at=str(n))
        return include

    @field_validator("truncation")
    @classmethod
    def no_truncation(cls, value: str | None) -> str | None:
        if value == "auto":
            raise invalid("truncation 'auto' is not supported: the whole input is sent to the model.")
        return value

    @field_validator("conversation", "prompt")
    @classmethod
    def not_supported(cls, value: Any, info) -> Any:
        if value is not None:
            raise invalid(f"`{info.field_name}` is not supported by this server; use `previous_response_id` "
                          "and `instructions`.")
        return value

    @field_validator("text")
    @classmethod
    def text_format(cls, value: dict | None) -> dict | None:
        kind = ((value or {}).get("format") or {}).get("type", "text")
        if kind not in ("text", "json_object", "json_schema"):
            raise invalid(f"The text format '{kind}' is not supported.", at="format.type")
        return value

    @model_validator(mode="after")
    def tool_choice_names_a_tool(self) -> "CreateResponseBody":
        choice = self.tool_choice
        if isinstance(choice, str) and choice not in ("auto", "none", "required"):
            raise invalid("tool_choice must be 'auto', 'none', 'required' or an object naming a tool.",
                          at="tool_choice")
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "function" and not any(t["type"] == "function" and t["name"] == choice.get("name")
                                              for t in self.tools):
                raise invalid(f"tool_choice names the function {choice.get('name')!r}, which is not in tools.",
                              at="tool_choice")
            if kind == "code_interpreter" and not any(t["type"] == "code_interpreter" for t in self.tools):
                raise invalid("tool_choice names code_interpreter, which is not in tools.", at="tool_choice")
            if kind not in ("function", "code_interpreter", "allowed_tools"):
                raise invalid(f"tool_choice of type {kind!r} is not supported.", at="tool_choice")
        return self

    @property
    def include_set(self) -> set[str]:
        return set(self.include or [])


class ResponseItemList(ListResponse[dict[str, Any]]):
    pass


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"]
    deleted: bool

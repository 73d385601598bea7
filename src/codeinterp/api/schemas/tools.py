"""What assistants, threads and runs are given to work with, as requests name them: tools
(`FunctionObject`), `tool_resources` and `response_format`. file_search is refused clearly."""

from typing import Annotated, Any

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints, field_validator, model_validator,
)

from codeinterp.api.schemas.common import RequestModel, invalid

MAX_CODE_FILES = 20
MAX_TOOLS = 128
NO_FILE_SEARCH = "The file_search tool is not supported by this server; use code_interpreter."
FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class FunctionObject(BaseModel):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = Field(default=None, max_length=1_000_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class AssistantToolParam(BaseModel):
    """One of `tools`: code_interpreter, or a function; other fields of a tool are ignored."""

    type: str
    function: FunctionObject | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind == "file_search":
            raise invalid(NO_FILE_SEARCH)
        if kind not in ("code_interpreter", "function"):
            raise invalid(f"Invalid tool type {kind!r}: expected 'code_interpreter' or 'function'.")
        return kind

    @field_validator("function", mode="before")
    @classmethod
    def _no_unknown_fields(cls, function: Any) -> Any:
        unknown = sorted(set(function) - set(FunctionObject.model_fields)) if isinstance(function, dict) else []
        if unknown:
            raise invalid(f"Unknown parameter '{unknown[0]}'.", at=unknown[0])
        return function

    @model_validator(mode="after")
    def _function_given(self) -> "AssistantToolParam":
        if self.type == "function" and self.function is None:
            raise invalid("A function tool needs a 'function' object.", at="function")
        return self


def _distinct_functions(tools: list[AssistantToolParam]) -> list[AssistantToolParam]:
    names = set()
    for n, tool in enumerate(tools):
        if tool.function is not None and tool.type == "function":
            if tool.function.name in names:
                raise invalid(f"Duplicate function name '{tool.function.name}'.", at=f"{n}.function.name")
            names.add(tool.function.name)
    return tools


AssistantTools = Annotated[list[AssistantToolParam], Field(max_length=MAX_TOOLS), AfterValidator(_distinct_functions)]

FileId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class CodeInterpreterResourcesParam(RequestModel):
    file_ids: Annotated[list[FileId], Field(max_length=MAX_CODE_FILES),
                        AfterValidator(lambda ids: list(dict.fromkeys(ids)))] | None = None


class ToolResourcesParam(RequestModel):
    code_interpreter: CodeInterpreterResourcesParam | None = None
    file_search: Any = None

    @field_validator("file_search")
    @classmethod
    def _no_file_search(cls, value: Any) -> None:
        if value:
            raise invalid(NO_FILE_SEARCH)
        return None


class JsonSchemaParam(RequestModel):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatJsonSchemaParam(RequestModel):
    type: str
    json_schema: JsonSchemaParam


def _response_format(value: Any) -> Any:
    """"auto", {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}},
    as stored (a dict, not a model)."""
    if value is None or value == "auto":
        return value
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        if set(value) != {"type"}:
            raise invalid(f"response_format of type '{kind}' takes no other fields.")
        return {"type": kind}
    if kind != "json_schema":
        raise invalid("response_format must be 'auto' or an object whose type is 'text', 'json_object' or "
                      "'json_schema'.")
    checked = ResponseFormatJsonSchemaParam.model_validate(value)
    return {"type": "json_schema", "json_schema": checked.json_schema.model_dump(exclude_none=True, by_alias=True)}


RESPONSE_FORMAT_DESCRIPTION = ("'auto', {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                               "{\"type\": \"json_schema\", \"json_schema\": {name, description, schema, strict}}")
ResponseFormatParam = Annotated[Any, BeforeValidator(_response_format),
                                Field(description=RESPONSE_FORMAT_DESCRIPTION)]

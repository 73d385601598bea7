"""A new run's settings: the request's values, else its assistant's, else the defaults."""

from codeinterp.store.errors import InvalidRequest


def run_fields(assistant, body: dict) -> dict:
    """The run's settings (columns): the request's values, else the assistant's, else the defaults."""
    tools = body.get("tools")
    tools = list(tools) if tools is not None else list(assistant.tools or [])
    for tool in tools:
        if tool.get("type") == "file_search":
            raise InvalidRequest("The file_search tool is not supported by this server; "
                                 "use code_interpreter or function tools.", param="tools")
        if tool.get("type") == "function" and not (tool.get("function") or {}).get("name"):
            raise InvalidRequest("A function tool needs function.name.", param="tools")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "file_search":
            raise InvalidRequest("The file_search tool is not supported by this server.", param="tool_choice")
        if choice.get("type") == "code_interpreter" and not any(t["type"] == "code_interpreter" for t in tools):
            raise InvalidRequest("tool_choice names code_interpreter, which is not among the run's tools.",
                                 param="tool_choice")
        if choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if name not in {t["function"]["name"] for t in tools if t["type"] == "function"}:
                raise InvalidRequest(f"tool_choice names function {name!r}, which is not among the run's tools.",
                                     param="tool_choice")

    def pick(name, default=None):
        value = body.get(name)
        if value is None:
            value = getattr(assistant, name, None)
        return default if value is None else value

    instructions = body.get("instructions")
    return {
        "model": body.get("model") or assistant.model,
        "instructions": instructions if instructions is not None else (assistant.instructions or ""),
        "additional_instructions": body.get("additional_instructions"),
        "tools": tools,
        "metadata": body.get("metadata") or {},
        "temperature": pick("temperature", 1.0),
        "top_p": pick("top_p", 1.0),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": body.get("truncation_strategy") or {"type": "auto", "last_messages": None},
        "tool_choice": choice if choice is not None else "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls") if body.get("parallel_tool_calls") is not None else True,
        "response_format": pick("response_format", "auto"),
    }

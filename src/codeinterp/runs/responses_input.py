"""A response's input, as clients send it, -> stored items -> the chat messages the model reads.

`input` may be a string, a list of messages with string content, or typed items: messages with
`input_text` / `input_image` / `input_file` parts, `function_call_output` items answering a
function call, and items of earlier output sent back (`message`, `function_call`,
`code_interpreter_call`; `reasoning` items are dropped: no reasoning is kept here). Items are
stored as the contract shapes them, each with an id.
"""

import json
from dataclasses import dataclass

from codeinterp.runs.python_tool import TOOL_NAME, quoted_path
from codeinterp.store.errors import InvalidRequest
from codeinterp.store.ids import new_id

ROLES = ("user", "assistant", "system", "developer")
ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "code_interpreter_call": "ci"}


@dataclass
class InputFile:
    """A file an `input_file` part names: copied into the response's container."""

    file_id: str
    param: str


def _part(part, n: int, role: str, param: str, files: list[InputFile]) -> dict:
    at = f"{param}.content[{n}]"
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequest("Each content part must be an object with a `type`.", param=at)
    kind = part["type"]
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        if role == "assistant" or kind == "output_text":
            return {"type": "output_text", "text": part["text"], "annotations": part.get("annotations") or []}
        return {"type": "input_text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image" and (isinstance(part.get("image_url"), str) or isinstance(part.get("file_id"), str)):
        return {k: part[k] for k in ("type", "image_url", "file_id", "detail") if part.get(k) is not None} | {
            "detail": part.get("detail") or "auto"}
    if kind == "input_file" and isinstance(part.get("file_id"), str):
        files.append(InputFile(part["file_id"], f"{at}.file_id"))
        return {k: part[k] for k in ("type", "file_id", "filename") if part.get(k) is not None}
    if kind == "input_file":
        raise InvalidRequest("An input_file part must name a `file_id` (upload the file to /v1/files first).",
                             param=at)
    raise InvalidRequest(f"Content parts of type '{kind}' are not supported here.", param=f"{at}.type")


def _message(item: dict, param: str, files: list[InputFile]) -> dict:
    role = item.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"A message's role must be one of {', '.join(ROLES)}.", param=f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        parts = [_part({"type": "output_text" if role == "assistant" else "input_text", "text": content},
                       0, role, param, files)]
    elif isinstance(content, list):
        parts = [_part(p, n, role, param, files) for n, p in enumerate(content)]
    else:
        raise InvalidRequest("A message's content must be a string or a list of parts.", param=f"{param}.content")
    return {"id": item.get("id") or new_id("msg"), "type": "message", "role": role, "status": "completed",
            "content": parts}


def input_items(value: str | list | None) -> tuple[list[dict], list[InputFile]]:
    """The stored items of a request's `input`, and the files its `input_file` parts name."""
    files: list[InputFile] = []
    if value is None:
        return [], files
    if isinstance(value, str):
        return [_message({"role": "user", "content": value}, "input", files)], files
    items = []
    for n, item in enumerate(value):
        param = f"input[{n}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message":
            items.append(_message(item, param, files))
        elif kind == "function_call_output" and isinstance(item.get("call_id"), str):
            output = item.get("output")
            if not isinstance(output, str):
                output = json.dumps(output)
            items.append({"id": item.get("id") or new_id("fco"), "type": "function_call_output",
                          "call_id": item["call_id"], "output": output, "status": "completed"})
        elif kind == "function_call" and isinstance(item.get("call_id"), str) and isinstance(item.get("name"), str):
            items.append({"id": item.get("id") or new_id("fc"), "type": "function_call", "call_id": item["call_id"],
                          "name": item["name"], "arguments": item.get("arguments") or "", "status": "completed"})
        elif kind == "code_interpreter_call" and isinstance(item.get("code"), str):
            items.append({"id": item.get("id") or new_id("ci"), "type": "code_interpreter_call",
                          "status": "completed", "code": item["code"], "container_id": item.get("container_id") or "",
                          "outputs": item.get("outputs")})
        elif kind == "reasoning":
            continue
        else:
            raise InvalidRequest(f"Input items of type '{kind}' are not supported here (or lack a required field).",
                                 param=param)
    return items, files


def _logs_text(outputs: list | None) -> str:
    if outputs is None:  # sent back without its outputs, and not one this server can read them from
        return "[output not available]"
    logs = [o.get("logs", "") for o in outputs or [] if isinstance(o, dict) and o.get("type") == "logs"]
    images = sum(1 for o in outputs or [] if isinstance(o, dict) and o.get("type") == "image")
    text = "\n".join(logs) or "[no output]"
    return text + (f"\n[{images} image{'s' if images > 1 else ''} displayed to the user]" if images else "")


def _user_content(parts: list[dict], images: dict[str, str], paths: dict[str, str]) -> str | list[dict]:
    chat: list[dict] = []
    for part in parts:
        if part["type"] == "input_text":
            chat.append({"type": "text", "text": part["text"]})
        elif part["type"] == "input_image":
            url = part.get("image_url") or images.get(part.get("file_id", ""))
            if url:
                chat.append({"type": "image_url", "image_url": {"url": url, "detail": part.get("detail", "auto")}})
        elif part["type"] == "input_file":
            path = paths.get(part["file_id"])
            where = f"at {quoted_path(path)}" if path else "(not available to code: no code_interpreter tool)"
            chat.append({"type": "text", "text": f"[file {part.get('filename') or part['file_id']} attached, {where}]"})
    if all(p["type"] == "text" for p in chat):
        return "\n".join(p["text"] for p in chat)
    return chat


def chat_messages(items: list[tuple[dict, str | None]], images: dict[str, str] | None = None,
                  paths: dict[str, str] | None = None) -> list[dict]:
    """Chat messages from stored items (each with the text the model read after a code call).
    `images` maps an input image's file id to a data URL; `paths` an input file's id to its path."""
    images, paths = images or {}, paths or {}
    messages: list[dict] = []

    def assistant_calls() -> list:
        if not messages or messages[-1]["role"] != "assistant" or messages[-1].get("tool_calls") is None:
            messages.append({"role": "assistant", "content": None, "tool_calls": []})
        return messages[-1]["tool_calls"]

    for data, model_text in items:
        kind = data["type"]
        if kind == "message":
            role = data["role"]
            if role in ("system", "developer"):
                text = "\n".join(p.get("text", "") for p in data["content"])
                messages.append({"role": "system", "content": text})
            elif role == "assistant":
                text = "".join(p.get("text", p.get("refusal", "")) for p in data["content"])
                messages.append({"role": "assistant", "content": text})
            else:
                messages.append({"role": "user", "content": _user_content(data["content"], images, paths)})
        elif kind == "function_call":
            assistant_calls().append({"id": data["call_id"], "type": "function",
                                      "function": {"name": data["name"], "arguments": data["arguments"]}})
        elif kind == "code_interpreter_call":
            assistant_calls().append({"id": data["id"], "type": "function",
                                      "function": {"name": TOOL_NAME, "arguments": json.dumps({"code": data["code"]})}})
            messages.append({"role": "tool", "tool_call_id": data["id"],
                             "content": model_text if model_text is not None else _logs_text(data.get("outputs"))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": data["call_id"], "content": data["output"]})
    return _tool_results_follow_calls(messages)


def _tool_results_follow_calls(messages: list[dict]) -> list[dict]:
    """Chat Completions wants every tool result right after the assistant message that made the
    call; a code call's result is stored right after it, a function's output comes later."""
    ordered: list[dict] = []
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    for m in messages:
        if m["role"] == "tool":
            continue
        ordered.append(m)
        for call in m.get("tool_calls") or []:
            result = results.get(call["id"])
            ordered.append(result or {"role": "tool", "tool_call_id": call["id"], "content": "[no output]"})
    return ordered

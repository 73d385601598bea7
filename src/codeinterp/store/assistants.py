"""Assistants, threads and messages: tables, contract-shaped dicts (`AssistantObject`,
`ThreadObject`, `MessageObject`) and the validation shared by every way of creating them
(the assistants and threads endpoints, and thread-and-run)."""

import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from codeinterp.store.db import Base
from codeinterp.store.errors import InvalidRequest, NotFound
from codeinterp.store.files import File
from codeinterp.store.ids import new_id, now
from codeinterp.store.runs import ACTIVE_RUN_STATUSES, Run, RunStep

MAX_CODE_FILES = 20
MAX_METADATA_KEYS = 16
MAX_TOOLS = 128
MAX_INSTRUCTIONS = 256_000
MAX_URL = 2_000_000
MAX_TEXT = 256_000  # characters in one text part of a message, as OpenAI allows

_sequence_lock = threading.Lock()
_last_sequence = 0


def next_sequence() -> int:
    """A creation-order key: nanoseconds since the epoch, strictly increasing within this process."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return _last_sequence


class Assistant(Base):
    __tablename__ = "assistants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    # Creation order, finer than `created_at` seconds.
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    created_at: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    description: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model: Mapped[str] = mapped_column(String(256))
    instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    tools: Mapped[list] = mapped_column(JSON, default=list)
    tool_resources: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_p: Mapped[float | None] = mapped_column(Float, nullable=True)
    response_format: Mapped[Any] = mapped_column(JSON, nullable=True)


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    tool_resources: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    thread_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger, default=next_sequence)
    created_at: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list] = mapped_column(JSON, default=list)
    attachments: Mapped[list | None] = mapped_column(JSON, nullable=True)
    assistant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incomplete_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incomplete_details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)

    __table_args__ = (Index("ix_messages_thread", "project_id", "thread_id", "sequence"),)


# ---- contract-shaped dicts ----------------------------------------------------------------

def assistant_to_dict(row: Assistant) -> dict:
    return {
        "id": row.id, "object": "assistant", "created_at": row.created_at, "name": row.name,
        "description": row.description, "model": row.model, "instructions": row.instructions,
        "tools": row.tools or [], "tool_resources": row.tool_resources or {},
        "metadata": row.metadata_ or {}, "temperature": row.temperature, "top_p": row.top_p,
        "response_format": row.response_format if row.response_format is not None else "auto",
    }


def thread_to_dict(row: Thread) -> dict:
    return {"id": row.id, "object": "thread", "created_at": row.created_at,
            "tool_resources": row.tool_resources or {}, "metadata": row.metadata_ or {}}


def message_to_dict(row: Message) -> dict:
    return {
        "id": row.id, "object": "thread.message", "created_at": row.created_at, "thread_id": row.thread_id,
        "status": row.status, "incomplete_details": row.incomplete_details, "completed_at": row.completed_at,
        "incomplete_at": row.incomplete_at, "role": row.role, "content": row.content or [],
        "assistant_id": row.assistant_id, "run_id": row.run_id, "attachments": row.attachments or [],
        "metadata": row.metadata_ or {},
    }


# ---- validation -----------------------------------------------------------------------------
# Bodies arrive as parsed JSON of any shape (the thread-and-run path passes them on unparsed),
# so every check here expects anything and answers InvalidRequest naming the parameter.

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IMAGE_DETAILS = ("auto", "low", "high")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_string(value: Any, param: str, max_length: int, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must be a string.", param=param)
    if len(value) > max_length:
        raise InvalidRequest(f"'{param}' can be at most {max_length} characters long.", param=param)
    return value


def check_number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"'{param}' must be a number between {low:g} and {high:g}.", param=param)
    return float(value)


def check_metadata(metadata: Any, param: str = "metadata") -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object of string keys and string values.", param=param)
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata can have at most {MAX_METADATA_KEYS} keys.", param=param)
    for key, value in metadata.items():
        if len(key) > 64:
            raise InvalidRequest("metadata keys can be at most 64 characters long.", param=param)
        if not isinstance(value, str):
            raise InvalidRequest(f"metadata value for '{key}' must be a string.", param=f"{param}.{key}")
        if len(value) > 512:
            raise InvalidRequest("metadata values can be at most 512 characters long.", param=f"{param}.{key}")
    return dict(metadata)


async def check_file_ids(session: AsyncSession, project_id: str, file_ids: list[str], params: list[str]) -> None:
    """Every id names a file of this project (`params[n]` names the parameter that gave `file_ids[n]`)."""
    if not file_ids:
        return
    found = set((await session.execute(
        select(File.id).where(File.project_id == project_id, File.id.in_(set(file_ids))))).scalars())
    for file_id, param in zip(file_ids, params):
        if file_id not in found:
            raise InvalidRequest(f"No file found with id '{file_id}'.", param=param)


def _file_id_list(value: Any, param: str, limit: int | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in value):
        raise InvalidRequest(f"'{param}' must be an array of file ids.", param=param)
    if limit is not None and len(value) > limit:
        raise InvalidRequest(f"'{param}' can have at most {limit} files.", param=param)
    return list(dict.fromkeys(value))


async def check_tool_resources(session: AsyncSession, project_id: str, resources: Any,
                               param: str = "tool_resources") -> dict | None:
    """`tool_resources` as stored: `{}` or `{"code_interpreter": {"file_ids": [...]}}`."""
    if resources is None:
        return None
    if not isinstance(resources, dict):
        raise InvalidRequest("tool_resources must be an object.", param=param)
    for name in resources:
        if name == "file_search":
            if resources[name]:
                raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                                     param=f"{param}.file_search")
        elif name != "code_interpreter":
            raise InvalidRequest(f"Unknown tool resource '{name}'.", param=f"{param}.{name}")
    code = resources.get("code_interpreter")
    if code is None:
        return {}
    if not isinstance(code, dict) or set(code) - {"file_ids"}:
        raise InvalidRequest("code_interpreter must be an object with 'file_ids'.", param=f"{param}.code_interpreter")
    ids_param = f"{param}.code_interpreter.file_ids"
    file_ids = _file_id_list(code.get("file_ids"), ids_param, MAX_CODE_FILES)
    await check_file_ids(session, project_id, file_ids, [f"{ids_param}[{n}]" for n in range(len(file_ids))])
    return {"code_interpreter": {"file_ids": file_ids}}


def check_function(function: Any, param: str) -> dict:
    """A `FunctionObject`: name (a-z, A-Z, 0-9, _ and -, at most 64), description, parameters, strict."""
    if not isinstance(function, dict):
        raise InvalidRequest("A function tool needs a 'function' object.", param=param)
    unknown = set(function) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise InvalidRequest(f"Unknown parameter '{sorted(unknown)[0]}'.", param=f"{param}.{sorted(unknown)[0]}")
    name = function.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise InvalidRequest("A function name must be 1 to 64 letters, digits, underscores or dashes.",
                             param=f"{param}.name")
    checked: dict[str, Any] = {"name": name}
    if function.get("description") is not None:
        checked["description"] = check_string(function["description"], f"{param}.description", 1_000_000)
    if function.get("parameters") is not None:
        if not isinstance(function["parameters"], dict):
            raise InvalidRequest("Function parameters must be a JSON Schema object.", param=f"{param}.parameters")
        checked["parameters"] = function["parameters"]
    if function.get("strict") is not None:
        if not isinstance(function["strict"], bool):
            raise InvalidRequest("'strict' must be a boolean.", param=f"{param}.strict")
        checked["strict"] = function["strict"]
    return checked


def check_tools(tools: Any, param: str = "tools") -> list[dict]:
    """Tools as stored: code_interpreter and function tools; file_search is refused clearly."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array.", param=param)
    if len(tools) > MAX_TOOLS:
        raise InvalidRequest(f"tools can have at most {MAX_TOOLS} entries.", param=param)
    checked, names = [], set()
    for n, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "file_search":
            raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                                 param=f"{param}[{n}].type")
        if kind == "code_interpreter":
            checked.append({"type": "code_interpreter"})
        elif kind == "function":
            function = check_function(tool.get("function"), f"{param}[{n}].function")
            if function["name"] in names:
                raise InvalidRequest(f"Duplicate function name '{function['name']}'.", param=f"{param}[{n}].function.name")
            names.add(function["name"])
            checked.append({"type": "function", "function": function})
        else:
            raise InvalidRequest(f"Invalid tool type {kind!r}: expected 'code_interpreter' or 'function'.",
                                 param=f"{param}[{n}].type")
    return checked


def check_response_format(value: Any, param: str = "response_format") -> Any:
    """`"auto"`, `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {...}}`."""
    if value is None or value == "auto":
        return value
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        if set(value) != {"type"}:
            raise InvalidRequest(f"response_format of type '{kind}' takes no other fields.", param=param)
        return {"type": kind}
    if kind != "json_schema":
        raise InvalidRequest("response_format must be 'auto' or an object whose type is 'text', 'json_object' or "
                             "'json_schema'.", param=param)
    schema = value.get("json_schema")
    if not isinstance(schema, dict) or set(value) != {"type", "json_schema"}:
        raise InvalidRequest("A json_schema response_format needs a 'json_schema' object.", param=f"{param}.json_schema")
    name = schema.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise InvalidRequest("json_schema.name must be 1 to 64 letters, digits, underscores or dashes.",
                             param=f"{param}.json_schema.name")
    checked: dict[str, Any] = {"name": name}
    for key, kinds in (("description", str), ("schema", dict), ("strict", bool)):
        if schema.get(key) is not None:
            if not isinstance(schema[key], kinds):
                raise InvalidRequest(f"json_schema.{key} has the wrong type.", param=f"{param}.json_schema.{key}")
            checked[key] = schema[key]
    unknown = set(schema) - {"name", "description", "schema", "strict"}
    if unknown:
        raise InvalidRequest(f"Unknown parameter '{sorted(unknown)[0]}'.", param=f"{param}.json_schema")
    return {"type": "json_schema", "json_schema": checked}


def _image_detail(part: dict, param: str) -> str:
    detail = part.get("detail", "auto")
    if detail not in _IMAGE_DETAILS:
        raise InvalidRequest("detail must be 'auto', 'low' or 'high'.", param=f"{param}.detail")
    return detail


def message_content(content: Any, param: str = "content") -> list[dict]:
    """A message's content as the contract's content blocks, from a string or a list of parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": check_string(content, param, MAX_TEXT), "annotations": []}}]
    if not isinstance(content, list) or not content:
        raise InvalidRequest("content must be a string or a non-empty array of content parts.", param=param)
    blocks = []
    for n, part in enumerate(content):
        at = f"{param}[{n}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest("A text part needs 'text', a string.", param=f"{at}.text")
            check_string(part["text"], f"{at}.text", MAX_TEXT)
            blocks.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
        elif kind == "image_file":
            image = part.get("image_file")
            if not isinstance(image, dict) or not isinstance(image.get("file_id"), str) or not image["file_id"]:
                raise InvalidRequest("An image_file part needs 'image_file.file_id'.", param=f"{at}.image_file.file_id")
            blocks.append({"type": "image_file", "image_file": {
                "file_id": image["file_id"], "detail": _image_detail(image, f"{at}.image_file")}})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https", "data") or len(url) > MAX_URL:
                raise InvalidRequest("An image_url part needs 'image_url.url', an http(s) or data URL.",
                                     param=f"{at}.image_url.url")
            blocks.append({"type": "image_url", "image_url": {"url": url, "detail": _image_detail(image, f"{at}.image_url")}})
        else:
            raise InvalidRequest("Each content part must be of type 'text', 'image_file' or 'image_url'.",
                                 param=f"{at}.type")
    return blocks


def check_attachments(attachments: Any, param: str = "attachments") -> list[dict]:
    """Attachments as stored; the file ids are checked by the caller (see `create_message`)."""
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        raise InvalidRequest("attachments must be an array.", param=param)
    checked = []
    for n, attachment in enumerate(attachments):
        at = f"{param}[{n}]"
        if not isinstance(attachment, dict) or not isinstance(attachment.get("file_id"), str) \
                or not attachment["file_id"]:
            raise InvalidRequest("Each attachment needs a file_id.", param=f"{at}.file_id")
        tools = attachment.get("tools") or []
        if not isinstance(tools, list):
            raise InvalidRequest("An attachment's tools must be an array.", param=f"{at}.tools")
        for m, tool in enumerate(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind == "file_search":
                raise InvalidRequest("The file_search tool is not supported by this server; use code_interpreter.",
                                     param=f"{at}.tools[{m}].type")
            if kind != "code_interpreter":
                raise InvalidRequest(f"Invalid attachment tool type {kind!r}: expected 'code_interpreter'.",
                                     param=f"{at}.tools[{m}].type")
        checked.append({"file_id": attachment["file_id"], "tools": [{"type": "code_interpreter"}] if tools else []})
    return checked


# ---- services -------------------------------------------------------------------------------

async def get_owned(session: AsyncSession, table, project_id: str, object_id: str, kind: str):
    """The row with this id in this project; another project's rows do not exist here."""
    row = await session.get(table, object_id) if isinstance(object_id, str) and object_id else None
    if row is None or row.project_id != project_id:
        raise NotFound(kind, object_id)
    return row


async def _set_assistant_fields(session: AsyncSession, project_id: str, row: Assistant, body: dict) -> None:
    if "model" in body and (body["model"] is not None or row.model is None):
        if not check_string(body["model"], "model", 256, nullable=False):
            raise InvalidRequest("'model' must not be empty.", param="model")
        row.model = body["model"]
    for name, limit in (("name", 256), ("description", 512), ("instructions", MAX_INSTRUCTIONS)):
        if name in body:
            setattr(row, name, check_string(body[name], name, limit))
    if "tools" in body:
        row.tools = check_tools(body["tools"])
    if "tool_resources" in body:
        row.tool_resources = await check_tool_resources(session, project_id, body["tool_resources"])
    if "metadata" in body:
        row.metadata_ = check_metadata(body["metadata"])
    if "temperature" in body:
        row.temperature = check_number(body["temperature"], "temperature", 0, 2)
    if "top_p" in body:
        row.top_p = check_number(body["top_p"], "top_p", 0, 1)
    if "response_format" in body:
        row.response_format = check_response_format(body["response_format"])
    if isinstance(row.response_format, dict) and row.response_format["type"] == "json_schema" \
            and any(t["type"] != "function" for t in row.tools):
        raise InvalidRequest("Invalid tools: all tools must be of type 'function' when response_format is of type "
                             "'json_schema'.", param="response_format")


async def create_assistant(session: AsyncSession, project_id: str, body: dict) -> Assistant:
    """A new assistant (`CreateAssistantRequest` as a dict)."""
    if body.get("model") is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    row = Assistant(id=new_id("asst"), project_id=project_id, sequence=next_sequence(), created_at=now(),
                    model=None, tools=[], tool_resources=None, metadata_={})
    await _set_assistant_fields(session, project_id, row, body)
    session.add(row)
    await session.flush()
    return row


async def update_assistant(session: AsyncSession, project_id: str, assistant_id: str, body: dict) -> Assistant:
    """Changes the fields present in `body` (`ModifyAssistantRequest` as a dict); `model: null` keeps the model."""
    row = await get_owned(session, Assistant, project_id, assistant_id, "assistant")
    await _set_assistant_fields(session, project_id, row, body)
    await session.flush()
    return row


async def create_thread(session: AsyncSession, project_id: str, body: Any, param: str = "") -> Thread:
    """A thread with its initial messages (`CreateThreadRequest` as a dict; `param` prefixes error params,
    e.g. "thread" when the body came inside a thread-and-run request)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequest("The thread must be an object.", param=param or None)
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise InvalidRequest("messages must be an array.", param=_join(param, "messages"))
    thread = Thread(id=new_id("thread"), project_id=project_id, created_at=now(),
                    tool_resources=await check_tool_resources(session, project_id, body.get("tool_resources"),
                                                              _join(param, "tool_resources")),
                    metadata_=check_metadata(body.get("metadata"), _join(param, "metadata")))
    session.add(thread)
    for n, message in enumerate(messages or []):
        await create_message(session, project_id, thread.id, message, param=_join(param, f"messages[{n}]"),
                             thread=thread)
    await session.flush()
    return thread


async def update_thread(session: AsyncSession, project_id: str, thread_id: str, body: dict) -> Thread:
    """Changes `tool_resources` and/or `metadata` (`ModifyThreadRequest` as a dict)."""
    row = await get_owned(session, Thread, project_id, thread_id, "thread")
    if "tool_resources" in body:
        row.tool_resources = await check_tool_resources(session, project_id, body["tool_resources"])
    if "metadata" in body:
        row.metadata_ = check_metadata(body["metadata"])
    await session.flush()
    return row


async def _refuse_if_running(session: AsyncSession, project_id: str, thread_id: str, doing: str) -> None:
    active = (await session.execute(select(Run.id).where(
        Run.project_id == project_id, Run.thread_id == thread_id, Run.status.in_(ACTIVE_RUN_STATUSES))
        .limit(1))).scalar()
    if active:
        raise InvalidRequest(f"Can't {doing} {thread_id} while a run {active} is active.")


async def delete_thread(session: AsyncSession, project_id: str, thread_id: str) -> None:
    """Deletes the thread with its messages, runs and run steps (not while a run on it is active)."""
    row = await get_owned(session, Thread, project_id, thread_id, "thread")
    await _refuse_if_running(session, project_id, thread_id, "delete thread")
    for table in (Message, RunStep, Run):
        await session.execute(delete(table).where(table.project_id == project_id, table.thread_id == thread_id))
    await session.delete(row)
    await session.flush()


async def create_message(session: AsyncSession, project_id: str, thread_id: str, body: Any,
                         param: str = "", thread: Thread | None = None) -> Message:
    """A user (or assistant-authored) message (`CreateMessageRequest` as a dict); not while a run on the
    thread is active, as OpenAI answers."""
    if thread is None:
        await get_owned(session, Thread, project_id, thread_id, "thread")
        await _refuse_if_running(session, project_id, thread_id, "add messages to")
    if not isinstance(body, dict):
        raise InvalidRequest("A message must be an object with 'role' and 'content'.", param=param or None)
    unknown = set(body) - {"role", "content", "attachments", "metadata"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unrecognized request argument supplied: {name}", param=_join(param, name))
    role = body.get("role")
    if role is None:
        raise InvalidRequest("Missing required parameter: 'role'.", param=_join(param, "role"),
                             code="missing_required_parameter")
    if role not in ("user", "assistant"):
        raise InvalidRequest("role must be 'user' or 'assistant'.", param=_join(param, "role"))
    if "content" not in body:
        raise InvalidRequest("Missing required parameter: 'content'.", param=_join(param, "content"),
                             code="missing_required_parameter")
    content = message_content(body["content"], param=_join(param, "content"))
    attachments = check_attachments(body.get("attachments"), _join(param, "attachments"))
    metadata = check_metadata(body.get("metadata"), _join(param, "metadata"))
    referenced = [(block["image_file"]["file_id"], _join(param, f"content[{n}].image_file.file_id"))
                  for n, block in enumerate(content) if block["type"] == "image_file"]
    referenced += [(a["file_id"], _join(param, f"attachments[{n}].file_id")) for n, a in enumerate(attachments)]
    await check_file_ids(session, project_id, [f for f, _ in referenced], [p for _, p in referenced])
    message = Message(id=new_id("msg"), project_id=project_id, thread_id=thread_id, created_at=now(),
                      sequence=next_sequence(), role=role, content=content, attachments=attachments,
                      status="completed", completed_at=None, metadata_=metadata)
    session.add(message)
    await session.flush()
    return message


async def get_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> Message:
    """The message, which must belong to this thread of this project."""
    await get_owned(session, Thread, project_id, thread_id, "thread")
    row = await get_owned(session, Message, project_id, message_id, "message")
    if row.thread_id != thread_id:
        raise NotFound("message", message_id)
    return row


async def list_thread_messages(session: AsyncSession, project_id: str, thread_id: str) -> list[Message]:
    """The thread's messages in creation order."""
    return list((await session.execute(
        select(Message).where(Message.project_id == project_id, Message.thread_id == thread_id)
        .order_by(Message.sequence, Message.id))).scalars())


async def thread_file_ids(session: AsyncSession, project_id: str, thread_id: str) -> list[str]:
    """The files a thread brings to its code session: the thread's `tool_resources.code_interpreter.file_ids`,
    then its messages' attachments, in creation order, without repeats (the assistant's come separately)."""
    thread = await get_owned(session, Thread, project_id, thread_id, "thread")
    ids = list(((thread.tool_resources or {}).get("code_interpreter") or {}).get("file_ids") or [])
    for message in await list_thread_messages(session, project_id, thread_id):
        ids += [a["file_id"] for a in message.attachments or []]
    return list(dict.fromkeys(ids))

"""What a sandbox host and the `remote` backend say to each other over HTTP: the routes, the JSON
shapes of the sandbox's values, the error kinds and the shared secret's header.

    GET    /health                               {"host_id", "sessions", "max_sessions", "ready"}
    POST   /sessions                             {"limits"?, "expiry_seconds"?} -> {"id", "limits", load}
    DELETE /sessions/{id}                        204 (closing twice is fine)
    POST   /sessions/{id}/execute                {"code", "timeout"?} -> NDJSON lines, see below
    POST   /sessions/{id}/interrupt              204
    GET    /sessions/{id}/files                  [SandboxFile, ...]
    PUT    /sessions/{id}/file?path=P            the file's bytes as the request body -> 204
    GET    /sessions/{id}/file?path=P&max_bytes=N  the file's bytes, at most N + 1 of them

An execution streams one JSON object a line: {"output": OutputEvent} as the kernel produces it,
{"heartbeat": true} while the cell is silent (so that a lost host is noticed), then
{"result": ExecutionResult} or {"error": KIND, "message": ...}. Errors otherwise answer a
non-2xx status with {"error": KIND, "message": ...}. Paths travel as query parameters,
percent-encoded from their bytes (a name that is not UTF-8 keeps them).
"""

import base64
import dataclasses
import urllib.parse

from codeinterp.sandbox.types import (
    ExecutionResult, FileTooLarge, IsolationUnavailable, Limits, OutputEvent, SandboxError, SandboxFile, SessionClosed,
    SessionLimitReached,
)

SECRET_HEADER = "authorization"  # "Bearer <secret>"
HEARTBEAT_SECONDS = 5.0
MAX_JSON_BYTES = 8 * 1024 * 1024  # a request's JSON body (the code of a cell, at most)

# error kind <-> the sandbox's exception; a kind not listed is a plain SandboxError
ERRORS: dict[str, type[Exception]] = {
    "session_closed": SessionClosed, "session_limit": SessionLimitReached, "file_too_large": FileTooLarge,
    "isolation_unavailable": IsolationUnavailable, "not_found": FileNotFoundError, "sandbox_error": SandboxError,
}


def error_kind(error: Exception) -> str:
    for kind, error_class in ERRORS.items():
        if type(error) is error_class:
            return kind
    return "sandbox_error"


def error_from(body: object) -> Exception:
    """The exception an error answer names (a SandboxError for anything unexpected)."""
    kind = body.get("error") if isinstance(body, dict) else None
    message = body.get("message", "") if isinstance(body, dict) else ""
    return ERRORS.get(kind, SandboxError)(str(message) or f"The sandbox host answered {body!r}.")


def output_to_json(event: OutputEvent) -> dict:
    data = dataclasses.asdict(event)
    data["png"] = base64.b64encode(event.png).decode() if event.png is not None else None
    return data


def output_from_json(data: dict) -> OutputEvent:
    png = data.get("png")
    return OutputEvent(kind=data["kind"], text=data.get("text", ""), png=base64.b64decode(png) if png else None,
                       ename=data.get("ename"), evalue=data.get("evalue"))


def file_to_json(file: SandboxFile) -> dict:
    return {"path": encode_path(file.path), "size": file.size, "mtime": file.mtime}


def file_from_json(data: dict) -> SandboxFile:
    return SandboxFile(path=decode_path(data["path"]), size=data["size"], mtime=data["mtime"])


def result_to_json(result: ExecutionResult) -> dict:
    return {"status": result.status, "outputs": [output_to_json(o) for o in result.outputs],
            "files_changed": [file_to_json(f) for f in result.files_changed], "state_lost": result.state_lost,
            "truncated": result.truncated, "duration_seconds": result.duration_seconds}


def result_from_json(data: dict) -> ExecutionResult:
    return ExecutionResult(status=data["status"], outputs=[output_from_json(o) for o in data["outputs"]],
                           files_changed=[file_from_json(f) for f in data["files_changed"]],
                           state_lost=data["state_lost"], truncated=data["truncated"],
                           duration_seconds=data["duration_seconds"])


def limits_to_json(limits: Limits) -> dict:
    return dataclasses.asdict(limits)


def limits_from_json(data: dict) -> Limits:
    return Limits(**{f.name: int(data[f.name]) for f in dataclasses.fields(Limits)})


def encode_path(path: str) -> str:
    """A path as ASCII: its bytes (surrogates back to the bytes they stand for) percent-encoded."""
    return urllib.parse.quote_from_bytes(path.encode("utf-8", "surrogateescape"), safe="/")


def decode_path(text: str) -> str:
    return urllib.parse.unquote_to_bytes(text).decode("utf-8", "surrogateescape")

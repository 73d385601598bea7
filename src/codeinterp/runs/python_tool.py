"""The code tool as the model sees it: a function `python(code: string)`.

Holds the tool's definition, the decoding of its (streamed) arguments, and the text the
model gets back after an execution.
"""

import json
import re
from dataclasses import dataclass, field

from codeinterp.sandbox.types import ExecutionResult

TOOL_NAME = "python"

TOOL_DEFINITION = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run Python code in a stateful Jupyter-like session and get back what it printed, the "
            "value of its last expression, its traceback, and the files it wrote. Variables, imports "
            "and files persist between calls. Files live in /mnt/data; files saved there can be "
            "linked for the user as sandbox:/mnt/data/NAME. The session has no internet access."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}

MAX_RESULT_CHARS = 16_000
_CODE_VALUE_START = re.compile(r'\s*\{\s*"code"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def code_from_arguments(arguments: str) -> str:
    """The code in a finished `python` call. Models sometimes send the bare code instead of JSON."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments if not arguments.lstrip().startswith("{") else ""
    if isinstance(value, dict):
        code = value.get("code", "")
        return code if isinstance(code, str) else json.dumps(code)
    return value if isinstance(value, str) else ""


class StreamedCode:
    """Decodes the `code` string of `{"code": "..."}` arguments while they arrive in pieces.

    `feed(fragment)` returns the code text that became complete with this fragment (possibly "").
    Arguments of another shape decode to nothing here; `finish(arguments)` then gives the whole code.
    """

    def __init__(self) -> None:
        self.arguments = ""
        self.code = ""  # decoded so far
        self._pos: int | None = None  # index in `arguments` of the next undecoded character
        self._ended = False
        self._unsupported = False

    def feed(self, fragment: str) -> str:
        self.arguments += fragment
        if self._unsupported or self._ended:
            return ""
        if self._pos is None and not self._find_start():
            return ""
        before = len(self.code)
        self._decode()
        return self.code[before:]

    def finish(self, arguments: str) -> str:
        """The rest of the code, given the complete arguments."""
        code = code_from_arguments(arguments)
        if not code.startswith(self.code):  # the pieces disagree with the whole: the whole wins
            self.code = code
            return ""
        rest = code[len(self.code):]
        self.code = code
        return rest

    def _find_start(self) -> bool:
        match = _CODE_VALUE_START.match(self.arguments)
        if match:
            self._pos = match.end()
            return True
        if not '{"code":"'.startswith("".join(self.arguments.split())):
            self._unsupported = True
        return False

    def _decode(self) -> None:
        text, i, out = self.arguments, self._pos, []
        while i < len(text):
            ch = text[i]
            if ch == '"':
                self._ended = True
                i += 1
                break
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            if i + 1 >= len(text):
                break
            kind = text[i + 1]
            if kind != "u":
                out.append(_ESCAPES.get(kind, kind))
                i += 2
                continue
            if i + 6 > len(text):
                break
            code_point = int(text[i + 2 : i + 6], 16)
            if 0xD800 <= code_point < 0xDC00:  # a surrogate pair needs its second half
                if i + 12 > len(text):
                    break
                low = int(text[i + 8 : i + 12], 16)
                out.append(chr(0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00)))
                i += 12
            else:
                out.append(chr(code_point))
                i += 6
        self._pos = i
        self.code += "".join(out)


def quoted_path(path: str) -> str:
    """A path under /mnt/data as the model reads it: a JSON string in which every character that is
    not printable is escaped, so that a file name (which sandbox code chooses) can never start a
    line or forge text around it."""
    text = json.dumps(f"/mnt/data/{path}", ensure_ascii=False)
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


@dataclass
class NotSaved:
    """A file the execution wrote that was not saved."""

    path: str  # under /mnt/data, as the model reads it
    size: int
    reason: str  # "execution_budget", "storage_quota", "expired" or "unreadable"
    limit_mb: int = 0  # the budget or quota passed


@dataclass
class SavedOutputs:
    """What became of an execution's images and files."""

    images: list[str] = field(default_factory=list)  # ids to cite of the images, in output order
    files: list[str] = field(default_factory=list)  # paths saved (as the model reads them)
    # path as the model reads it (relative to /mnt/data) -> the id to cite: a Files API file id (a
    # thread's container) or a container file id (an API container, whose images have paths too)
    file_ids: dict[str, str] = field(default_factory=dict)
    not_saved: list[NotSaved] = field(default_factory=list)
    over_cap: int = 0  # files left unsaved because more than `max_files` changed
    max_files: int = 0


def _not_saved_line(item: NotSaved) -> str:
    name = quoted_path(item.path)
    if item.reason == "execution_budget":
        return (f"[file not saved: {name} ({item.size} bytes): the files saved after one execution may "
                f"total at most {item.limit_mb} MB]")
    if item.reason == "storage_quota":
        return (f"[file not saved: {name} ({item.size} bytes): this project's storage quota of "
                f"{item.limit_mb} MB is full; the user can delete files to make room]")
    if item.reason == "expired":
        return f"[file not saved: {name}: the run reached its expiry time]"
    return f"[file not saved: {name}: it changed or was removed while it was being saved]"


def result_for_model(result: ExecutionResult, outputs: SavedOutputs, timeout: float | None) -> str:
    """What the model reads after an execution: output, traceback, notes, one line per file."""
    parts = [result.text.rstrip("\n")] if result.text.strip() else []
    if result.status == "timeout":
        parts.append(f"[execution interrupted: it ran longer than {timeout:g} seconds; state was kept]"
                     if timeout else "[execution interrupted]")
    elif result.status == "killed":
        parts.append("[the session was restarted because the code did not stop; variables and imports were lost]")
    elif result.status == "crashed":
        parts.append("[the Python process died (for example out of memory); variables and imports were lost]")
    images = len(outputs.images)
    if images:
        parts.append(f"[{images} image{'s' if images > 1 else ''} displayed to the user]")
    parts += [f"[file saved: {quoted_path(path)}]" for path in outputs.files]
    parts += [_not_saved_line(item) for item in outputs.not_saved]
    if outputs.over_cap:
        parts.append(f"[{outputs.over_cap} more files changed in /mnt/data were not saved: at most "
                     f"{outputs.max_files} files are saved per execution]")
    if not parts:
        parts.append("[no output]")
    return truncate("\n".join(parts))


def truncate(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... output truncated: {omitted} characters omitted ...]\n{text[-tail:]}"

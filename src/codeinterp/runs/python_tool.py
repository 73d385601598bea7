"""The code tool as the model sees it: a function `python(code: string)`.

Holds the tool's definition, the decoding of its (streamed) arguments, and the text the
model gets back after an execution.
"""

import json
import re

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


def result_for_model(result: ExecutionResult, new_files: list[str], timeout: float | None) -> str:
    """What the model reads after an execution: output, traceback, notes, one line per file."""
    parts = [result.text.rstrip("\n")] if result.text.strip() else []
    if result.status == "timeout":
        parts.append(f"[execution interrupted: it ran longer than {timeout:g} seconds; state was kept]"
                     if timeout else "[execution interrupted]")
    elif result.status == "killed":
        parts.append("[the session was restarted because the code did not stop; variables and imports were lost]")
    elif result.status == "crashed":
        parts.append("[the Python process died (for example out of memory); variables and imports were lost]")
    images = sum(1 for o in result.outputs if o.kind == "image")
    if images:
        parts.append(f"[{images} image{'s' if images > 1 else ''} displayed to the user]")
    for path in new_files:
        parts.append(f"[file saved: /mnt/data/{path}]")
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

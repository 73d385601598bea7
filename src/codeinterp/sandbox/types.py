"""The values the sandbox hands to the rest of codeinterp (see `codeinterp.sandbox.interface`
for the backend and session that hand them). It knows nothing of HTTP or the database.
"""

from dataclasses import dataclass, field
from typing import Literal

OutputKind = Literal["stdout", "stderr", "result", "image", "error", "notice"]


@dataclass
class OutputEvent:
    """One piece of output from an execution, in the order it happened.

    - stdout / stderr: `text` is the new text.
    - result: `text` is the repr of the last expression's value (`2 + 2` gives "4").
    - image: `png` holds a PNG (matplotlib figures, IPython display).
    - error: `ename`, `evalue`, and `text` is the formatted traceback (no ANSI colours).
    - notice: `text` is a message from codeinterp itself (kernel restarted, output truncated).
    """

    kind: OutputKind
    text: str = ""
    png: bytes | None = None
    ename: str | None = None
    evalue: str | None = None


@dataclass
class SandboxFile:
    """A regular file under /mnt/data (one that an execution created or modified, or one listed)."""

    path: str  # relative to /mnt/data, e.g. "out/chart.csv"; a name that is not UTF-8 keeps its bytes as surrogates
    size: int  # apparent size in bytes (a sparse file counts at this size)
    mtime: float


ExecutionStatus = Literal["ok", "error", "timeout", "killed", "crashed"]


@dataclass
class ExecutionResult:
    """What an execution came to.

    status:
      ok       the code ran to its end
      error    the code raised (the traceback is an `error` output); the session lives on
      timeout  the timeout passed and the code was interrupted (KeyboardInterrupt); state kept
      killed   the code did not stop within the grace period after an interrupt or timeout:
               the kernel was killed and will restart on next use; state was lost
      crashed  the kernel died (segfault, os._exit, out of memory); it restarts on next use;
               state was lost
    """

    status: ExecutionStatus
    outputs: list[OutputEvent] = field(default_factory=list)
    files_changed: list[SandboxFile] = field(default_factory=list)
    state_lost: bool = False
    truncated: bool = False
    duration_seconds: float = 0.0

    @property
    def text(self) -> str:
        """The output as the model sees it: streams, result, traceback and notices, in order."""
        text = ""
        for output in self.outputs:
            text += text_piece(text, output)
        return text


def text_piece(text_so_far: str, output: OutputEvent) -> str:
    """What `output` adds to an execution's text (`ExecutionResult.text`) after `text_so_far`: a
    stream's text as it is; a result, traceback or notice on lines of its own; nothing for an image.
    Streaming these pieces as outputs arrive gives the same text as the finished result."""
    if output.kind in ("stdout", "stderr"):
        return output.text
    if output.kind == "image" or not output.text:
        return ""
    start = "\n" if text_so_far and not text_so_far.endswith("\n") else ""
    return start + (output.text if output.text.endswith("\n") else output.text + "\n")


@dataclass
class Limits:
    memory_mb: int
    pids: int
    cpu_shares: int
    tmp_mb: int
    data_mb: int
    file_size_mb: int
    output_bytes: int


class SandboxError(Exception):
    """Base error of the sandbox."""


class SessionLimitReached(SandboxError):
    """The process-wide cap on live sessions is reached."""


class IsolationUnavailable(SandboxError):
    """Isolation features are missing and unsafe mode was not allowed."""


class SessionClosed(SandboxError):
    """The session was closed (or expired)."""


class FileTooLarge(SandboxError):
    """A file read from a session is larger than the caller allows."""

"""The sandbox seam: what the rest of codeinterp may use of a sandbox, whatever runs it.

A backend makes sessions; a session is one isolated, stateful Python kernel with its own
/mnt/data. Backends are chosen by configuration (`CODEINTERP_SANDBOX_BACKEND`, see
`codeinterp.sandbox.create_backend`): `bwrap` runs kernels on this host in bubblewrap; others
(remote hosts, Kubernetes, an in-process one for tests) implement the same two classes.
Files cross this seam as byte streams, never as host paths, so that a backend on another
machine fits. Nothing here knows of HTTP, the database or runs.
"""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

from codeinterp.sandbox.types import ExecutionResult, Limits, OutputEvent, SandboxFile

OutputCallback = Callable[[OutputEvent], Awaitable[None] | None]


class SandboxSession(ABC):
    """One isolated, stateful kernel and its /mnt/data.

    `id` names it for `SandboxBackend.get`; `limits` are the limits it runs under; `closed` turns
    True once it is closed (by `close`, by its backend at expiry, or when its backend stops)."""

    id: str
    limits: Limits
    closed: bool

    @abstractmethod
    async def execute(self, code: str, timeout: float | None = None,
                      on_output: OutputCallback | None = None) -> ExecutionResult:
        """Run `code` as a notebook cell: variables, imports and files persist between calls.

        `on_output` (sync or async) is called with each `OutputEvent` as the kernel produces it,
        before this returns. Executions of one session run one at a time (callers wait their
        turn). The cell is interrupted after `timeout` seconds (the backend's default when None)
        and its kernel killed if it does not stop within the backend's grace period. A kernel that
        was lost earlier is restarted first, with a notice and `state_lost` set. Returns the
        outputs in order, the files of /mnt/data the cell created or changed, and its status.
        Raises `SessionClosed` if the session is closed, before or while the cell runs."""

    @abstractmethod
    async def interrupt(self) -> None:
        """Interrupt the cell running now (KeyboardInterrupt inside); nothing when idle."""

    @abstractmethod
    async def put_file(self, path: str, data: bytes | AsyncIterable[bytes]) -> None:
        """Write /mnt/data/`path` from bytes or a stream of byte chunks, making missing parent
        directories and replacing what was there, never through a link. Raises `SandboxError` for
        a path outside /mnt/data and `SessionClosed` once closed."""

    @abstractmethod
    def read_file(self, path: str, max_bytes: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of the regular file /mnt/data/`path`, in chunks, never through a link.

        Raises `FileNotFoundError` (when iterated) if it is missing, a link, a directory or a
        special file, and `FileTooLarge` before more than `max_bytes` would be yielded."""

    @abstractmethod
    async def list_files(self) -> list[SandboxFile]:
        """Every regular file under /mnt/data (links and special files left out), by a walk
        bounded in depth and entries."""

    @abstractmethod
    async def close(self) -> None:
        """End the session: its kernel, its processes and its files go. Closing twice is fine."""


class SandboxBackend(ABC):
    """Makes and keeps sandbox sessions."""

    @abstractmethod
    async def start(self) -> None:
        """Check that the backend can isolate sessions (raise `IsolationUnavailable` if not, unless
        the settings allow unsafe sandboxes) and start what sessions need. Returns quickly:
        `create_session` waits for anything still starting."""

    @abstractmethod
    async def create_session(self, limits: Limits | None = None,
                             expiry_seconds: float | None = None) -> SandboxSession:
        """A new session with these limits (the settings' when None), closed by the backend after
        `expiry_seconds` without use (the settings' idle expiry when None). Raises
        `SessionLimitReached` at the backend's cap on live sessions."""

    @abstractmethod
    def get(self, session_id: str) -> SandboxSession | None:
        """The live session with this id, or None if it is closed, expired or unknown."""

    @abstractmethod
    async def stop(self) -> None:
        """Close every session and stop what the backend started."""

    async def check(self) -> None:
        """Raise (with a message an operator can act on) when the backend cannot make sessions now.
        Backends that reach something outside this process override it."""

    def counts(self) -> dict[str, int]:
        """What an operator watches, as far as the backend knows: `live_sessions` (handed out, open)
        and `warm_sessions` (started ahead of demand, ready)."""
        return {}


async def read_all(session: SandboxSession, path: str, max_bytes: int | None = None) -> bytes:
    """The whole of /mnt/data/`path` (for small files; large ones are streamed)."""
    return b"".join([chunk async for chunk in session.read_file(path, max_bytes)])

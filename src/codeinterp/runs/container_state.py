"""What the containers service keeps of each container in memory: its live sandbox session and
the lock its executions take; for a thread's container, the files of the thread's runs; for an
API container, its memory tier, its expiry and which of its files the session holds."""

import asyncio
import posixpath
import time
from dataclasses import dataclass, field

from codeinterp.runs.prompt import RunPart
from codeinterp.sandbox.interface import SandboxSession

MAX_NAME_BYTES = 255  # of a file name in /mnt/data (the filesystem's limit)
MAX_EXTENSION_BYTES = 32  # a longer "extension" is not one: the name is shortened as a whole


@dataclass
class InputFile:
    file_id: str
    path: str  # relative to /mnt/data


@dataclass
class ContainerState:
    project_id: str
    container_id: str | None = field(default=None, kw_only=True)  # a thread's: once code ran
    sandbox: SandboxSession | None = field(default=None, kw_only=True)  # once started
    state_lost: bool = field(default=False, kw_only=True)  # an earlier session ended (expired, closed, restart)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, kw_only=True)  # held while code runs
    last_used: float = field(default_factory=time.monotonic, kw_only=True)
    touched_at: float = field(default=0.0, kw_only=True)  # when last_active_at was last written (monotonic)

    def session_ended(self) -> None:
        self.sandbox = None
        self.state_lost = True

    @property
    def name(self) -> str:
        return f"container {self.container_id}"


@dataclass
class ThreadContainer(ContainerState):
    thread_id: str
    inputs: dict[str, InputFile] = field(default_factory=dict)  # file id -> where it is
    generated: dict[str, str] = field(default_factory=dict)  # path -> id of its latest output file
    copied: set[str] = field(default_factory=set)  # file ids present in the current sandbox
    ended_runs: dict[str, RunPart] = field(default_factory=dict)  # run id -> its part of the prompt, once ended

    def session_ended(self) -> None:
        super().session_ended()
        self.generated.clear()

    @property
    def name(self) -> str:
        return f"thread {self.thread_id}"

    def assign_inputs(self, files: list[tuple[str, str]]) -> None:
        """Give each new (file id, filename) a free path under /mnt/data."""
        taken = {f.path for f in self.inputs.values()} | set(self.generated)
        for file_id, filename in files:
            if file_id in self.inputs:
                continue
            path = _free_name(_safe_name(filename, file_id), taken)
            taken.add(path)
            self.inputs[file_id] = InputFile(file_id, path)

    def paths(self) -> dict[str, str]:
        """Path -> file id of every file the model may link (generated files win)."""
        known = {f.path: f.file_id for f in self.inputs.values()}
        known.update(self.generated)
        return known

    def listed_paths(self) -> list[str]:
        """The paths to tell the model of: input files first, then generated ones."""
        inputs = sorted(f.path for f in self.inputs.values())
        return inputs + sorted(set(self.generated) - set(inputs))


@dataclass
class ApiContainer(ContainerState):
    memory_limit: str = "1g"
    expiry_minutes: int = 20
    copied: set[str] = field(default_factory=set)  # container file ids present in the current sandbox
    synced: bool = False  # every container file was copied into the current sandbox (later ones are put at once)
    removed: list[str] = field(default_factory=list)  # paths deleted through the API, to remove from the session
    gone: bool = False  # deleted or expired: no session starts again

    def session_ended(self) -> None:
        super().session_ended()
        self.copied.clear()
        self.synced = False
        self.removed.clear()


def _safe_name(filename: str, file_id: str) -> str:
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    if name in ("", ".", ".."):
        name = file_id
    return name


def _fitted(stem: str, ext: str, suffix: str = "") -> str:
    """stem + suffix + ext, the stem shortened (by whole characters) so the name fits MAX_NAME_BYTES
    in UTF-8; an extension too long to be one is shortened with the stem."""
    if len(ext.encode()) > MAX_EXTENSION_BYTES:
        stem, ext = stem + ext, ""
    room = MAX_NAME_BYTES - len((suffix + ext).encode())
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return stem + suffix + ext


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, fitted to MAX_NAME_BYTES, with a suffix where it collides with a name taken."""
    stem, ext = posixpath.splitext(name)
    fitted = _fitted(stem, ext)
    n = 0
    while fitted in taken:
        n += 1
        fitted = _fitted(stem, ext, f"_{n}")
    return fitted



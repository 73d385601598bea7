"""Sandbox sessions: isolated, stateful Python kernels forked from one warm parent (the zygote).

The manager starts the zygote inside bubblewrap, asks it for a kernel per session, puts each
kernel in the session's control groups before it runs anything, and talks to it over a socket.
See `codeinterp.sandbox.types` for the API and `codeinterp.sandbox.zygote` for the isolation.
"""

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from codeinterp.config import Settings
from codeinterp.sandbox import cgroups, datadir
from codeinterp.sandbox.channel import KernelChannel, OutputOverrun
from codeinterp.sandbox.types import (
    ExecutionResult, IsolationUnavailable, Limits, OutputEvent, SandboxError, SessionClosed, SessionLimitReached,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SANDBOX_FILES = ("zygote.py", "kernel.py", "seccomp_policy.py")  # all of codeinterp that a sandbox sees
INSIDE = "/opt/codeinterp"
INSIDE_ENV = "/opt/venv"  # where the sandbox's Python environment appears inside
GO = b'{"type": "go"}\n'
UID_SPAN = 1 << 24  # sessions take uids at random from [sandbox_uid_base, sandbox_uid_base + UID_SPAN)
START_BYTES = 64 * 1024  # what a kernel's start may send (its PID, or why it failed)
# Beyond its output budget, what a kernel may send per execution: its start, the end of the cell,
# notices, and what the previous cell's threads wrote after it ended (charged to that cell's budget).
PROTOCOL_SLACK = 64 * 1024
REAPER_INTERVAL = 1.0
INLINE_SNAPSHOT_ENTRIES = 64  # /mnt/data walks this small run on the event loop; bigger ones in a thread

OutputCallback = Callable[[OutputEvent], Awaitable[None] | None]


def limits_from(settings: Settings) -> Limits:
    return Limits(memory_mb=settings.sandbox_memory_mb, pids=settings.sandbox_pids,
                  cpu_shares=settings.sandbox_cpu_shares, tmp_mb=settings.sandbox_tmp_mb,
                  data_mb=settings.sandbox_data_mb, file_size_mb=settings.sandbox_file_size_mb,
                  output_bytes=settings.sandbox_output_bytes)


def isolation_report(settings: Settings) -> dict[str, bool | str]:
    """What this host gives, feature by feature (also printed by `codeinterp doctor`)."""
    bwrap = shutil.which("bwrap")
    return {
        "root": os.geteuid() == 0,
        "bubblewrap": bwrap or False,
        "cgroups": f"v{cgroups.version()}" if cgroups.usable() else False,
        "seccomp": Path("/proc/self/status").read_text().find("Seccomp:") >= 0,
        "sandbox_python": (settings.sandbox_env / "bin" / "python").exists(),
    }


def missing_isolation(settings: Settings) -> list[str]:
    report = isolation_report(settings)
    missing = []
    if not report["root"]:
        missing.append("root (to build namespaces, mounts and cgroups for each session)")
    if not report["bubblewrap"]:
        missing.append("bubblewrap (bwrap)")
    if not report["cgroups"]:
        missing.append("writable cgroups with memory, pids and cpu controllers")
    return missing


_FIELDS = {"stream": ("text",), "result": ("text",), "display": ("png",), "error": ("traceback", "ename", "evalue"),
           "notice": ("text",), "done": ("status",)}


def _well_formed(message: object) -> bool:
    """A message as kernel.py sends it (code in the kernel can write anything to its socket)."""
    if not isinstance(message, dict):
        return False
    fields = _FIELDS.get(message.get("type"), ())
    if not all(isinstance(message.get(key), str) for key in fields):
        return False
    if not isinstance(message.get("text", ""), str):
        return False
    if message.get("type") == "display":
        try:
            base64.b64decode(message["png"], validate=True)
        except (binascii.Error, ValueError):
            return False
    return True


def wire_budget(limits: Limits) -> int:
    """Bytes the manager reads from a kernel per execution: the output cap of this cell and of the
    one before (whose threads may still write), and the protocol's own messages."""
    return 2 * limits.output_bytes + PROTOCOL_SLACK


class Kernel:
    """One kernel process: its channel (socket and pidfd) and its session's groups."""

    def __init__(self, channel: KernelChannel, group: cgroups.SessionGroup | None) -> None:
        self.channel = channel
        self.group = group

    @property
    def pid(self) -> int:
        return self.channel.pid

    def alive(self) -> bool:
        """False once the kernel has exited (checked between executions)."""
        return not self.channel.exited()

    def kill(self) -> None:
        self.channel.close()
        if self.group:
            self.group.kill()


class Session:
    def __init__(self, manager: "SandboxManager", session_id: str, limits: Limits, expiry_seconds: float) -> None:
        self.manager = manager
        self.id = session_id
        self.limits = limits
        self.expiry_seconds = expiry_seconds
        self.data_dir = manager.session_root / session_id
        self.uid = manager._allocate_uid()
        self.created_at = time.time()
        self.last_used = time.monotonic()
        self.closed = False
        self.kernel: Kernel | None = None
        self.group: cgroups.SessionGroup | None = None
        self._lock = asyncio.Lock()
        self._restart_notice: str | None = None
        self._interrupted = False

    # ---- files ---------------------------------------------------------------------------

    async def put_file(self, name: str, source: bytes | Path) -> None:
        self._check_open()
        await asyncio.to_thread(datadir.write_file, self.data_dir, name, source, self.uid)
        self.last_used = time.monotonic()

    async def read_file(self, name: str) -> bytes:
        self._check_open()
        return await asyncio.to_thread(datadir.read_file, self.data_dir, name)

    async def open_file(self, name: str) -> BinaryIO:
        """A file of /mnt/data open for reading, to copy out without holding it in memory."""
        self._check_open()
        return await asyncio.to_thread(datadir.open_file, self.data_dir, name)

    async def list_files(self) -> dict[str, tuple[int, int]]:
        """{path under /mnt/data: (size, mtime_ns)}; links and special files are left out."""
        self._check_open()
        return await asyncio.to_thread(datadir.snapshot, self.data_dir)

    # ---- execution -----------------------------------------------------------------------

    async def execute(self, code: str, timeout: float | None = None,
                      on_output: OutputCallback | None = None) -> ExecutionResult:
        self._check_open()
        async with self._lock:
            self._check_open()
            self.last_used = time.monotonic()
            try:
                return await self._execute(code, timeout, on_output)
            finally:
                self.last_used = time.monotonic()

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback | None) -> ExecutionResult:
        started = time.monotonic()
        result = ExecutionResult(status="ok")

        async def emit(event: OutputEvent) -> None:
            last = result.outputs[-1] if result.outputs else None
            if last is not None and event.kind in ("stdout", "stderr") and last.kind == event.kind:
                last.text += event.text  # one event per run of the same stream
            else:
                result.outputs.append(OutputEvent(kind=event.kind, text=event.text, png=event.png,
                                                  ename=event.ename, evalue=event.evalue))
            if on_output is not None:
                maybe = on_output(event)
                if asyncio.iscoroutine(maybe):
                    await maybe

        if self.kernel is not None and not self.kernel.alive():
            await self._kill_kernel(f"The kernel stopped between executions ({self._death_reason()}) and was "
                                    "restarted; variables and imports were lost (files in /mnt/data remain).")
        if self.kernel is None:
            await self._start_kernel()
        if self._restart_notice:
            result.state_lost = True
            await emit(OutputEvent(kind="notice", text=self._restart_notice))
            self._restart_notice = None
        before = await self._snapshot()
        kernel = self.kernel
        self._interrupted = False
        timeout = timeout if timeout is not None else self.manager.settings.sandbox_exec_timeout_seconds
        grace = self.manager.settings.sandbox_interrupt_grace_seconds
        kernel.channel.start_execution(wire_budget(self.limits))
        # Sending the code is inside the timeout: a kernel that stops reading cannot hold the caller.
        reading = asyncio.ensure_future(self._send_and_read(kernel, code, result, emit))
        try:
            if not (await asyncio.wait({reading}, timeout=timeout))[0]:
                result.status = "timeout"
                self._signal(signal.SIGINT)
            if not reading.done() and not (await asyncio.wait({reading}, timeout=grace))[0]:
                reading.cancel()
                await self._lose_kernel(result, emit, "killed",
                                        f"The kernel did not stop within {grace:g} seconds of an interrupt",
                                        f"execution killed after {timeout:g} seconds")
        except asyncio.CancelledError:
            reading.cancel()
            self._signal(signal.SIGINT)
            raise
        if result.status != "killed":
            status = reading.result()
            if status is None and self.closed:
                raise SessionClosed(f"Session {self.id} was closed while it ran code.")
            if status == "overrun":
                result.truncated = True
                await emit(OutputEvent(kind="notice", text=f"[output truncated after {self.limits.output_bytes} "
                                                           "bytes: the kernel wrote past its output limit]\n"))
                await self._lose_kernel(result, emit, "crashed", "The previous kernel wrote past its output limit",
                                        "kernel stopped: it wrote past its output limit")
            elif status is None:
                await self._crashed(result, emit)
            elif result.status != "timeout":
                result.status = "ok" if status == "ok" else "error"
        after = await self._snapshot()
        result.files_changed = datadir.changes(before, after)
        result.duration_seconds = time.monotonic() - started
        return result

    async def _snapshot(self) -> dict[str, tuple[int, int]]:
        small = datadir.small_snapshot(self.data_dir, INLINE_SNAPSHOT_ENTRIES)
        return small if small is not None else await asyncio.to_thread(datadir.snapshot, self.data_dir)

    async def _send_and_read(self, kernel: Kernel, code: str, result: ExecutionResult, emit) -> str | None:
        with contextlib.suppress(ConnectionError, OSError):  # a kernel that just died: the reader sees the end
            await kernel.channel.send({"type": "execute", "code": code})
        return await self._read_until_done(kernel, result, emit)

    async def _read_until_done(self, kernel: Kernel, result: ExecutionResult, emit) -> str | None:
        """Outputs until the kernel says the cell is done: its status, None if the kernel died or
        sent garbage, "overrun" if it sent more than its budget (code writing to the socket itself:
        the kernel caps its own output to the same count)."""
        while True:
            try:
                message = await kernel.channel.receive()
            except OutputOverrun:
                return "overrun"
            except ValueError:
                message = None
            if message is None or not _well_formed(message):
                return None  # dead, or code in it wrote garbage to its socket: treated as a crash
            kind = message.get("type")
            if kind == "stream":
                await emit(OutputEvent(kind="stderr" if message.get("name") == "stderr" else "stdout",
                                       text=message["text"]))
            elif kind == "result":
                await emit(OutputEvent(kind="result", text=message["text"]))
            elif kind == "display":
                await emit(OutputEvent(kind="image", png=base64.b64decode(message["png"]),
                                       text=message.get("text", "")))
            elif kind == "error":
                await emit(OutputEvent(kind="error", text=message["traceback"], ename=message["ename"],
                                       evalue=message["evalue"]))
            elif kind == "notice":
                result.truncated = result.truncated or bool(message.get("truncated"))
                await emit(OutputEvent(kind="notice", text=message["text"]))
            elif kind == "done":
                result.truncated = result.truncated or bool(message.get("truncated"))
                return message["status"]

    def _death_reason(self) -> str:
        if self.group and self.group.out_of_memory():
            return f"the session's memory limit ({self.limits.memory_mb} MB) was exceeded"
        return "the kernel process died"

    async def _crashed(self, result: ExecutionResult, emit) -> None:
        reason = self._death_reason()
        await self._lose_kernel(result, emit, "crashed", f"The previous kernel stopped ({reason})",
                                f"kernel died: {reason}")

    async def _lose_kernel(self, result: ExecutionResult, emit, status: str, why: str, notice: str) -> None:
        """The kernel is gone (killed now, or dead): the cell says so, and the next one is told at restart."""
        await self._kill_kernel(f"{why} and was restarted; variables and imports were lost "
                                "(files in /mnt/data remain).")
        result.status = status
        result.state_lost = True
        await emit(OutputEvent(kind="notice", text=f"[{notice}; the kernel restarts on next use and its state "
                                                   "is lost]"))

    def _signal(self, signum: int) -> None:
        if self.kernel is not None:
            self.kernel.channel.signal(signum)

    async def interrupt(self) -> None:
        """Interrupt the running cell (KeyboardInterrupt inside)."""
        self._signal(signal.SIGINT)

    # ---- lifecycle -----------------------------------------------------------------------

    async def _start_kernel(self) -> None:
        if self.group is None and self.manager.use_cgroups:
            self.group = await asyncio.to_thread(cgroups.SessionGroup, self.manager.parent_group, self.id,
                                                 self.limits.memory_mb, self.limits.pids, self.limits.cpu_shares)
        elif self.group:  # a restart: what is left of the previous kernel goes first
            await asyncio.to_thread(self.group.empty_out)
        if self.group:
            self.group.reset_memory_events()
        self.kernel = await self.manager._spawn(self)

    async def _kill_kernel(self, notice: str | None) -> None:
        if self.kernel is not None:
            self.kernel.kill()
            self.kernel = None
        self._restart_notice = notice

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._kill_kernel(None)
        if self.group:
            await asyncio.to_thread(self.group.remove)
        await asyncio.to_thread(datadir.remove_tree, self.data_dir)
        self.manager._release(self.id)
        self.manager._forget(self)
        self.manager._uids.discard(self.uid)

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosed(f"Session {self.id} is closed.")


class SandboxManager:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions_dir = Path(settings.sessions_dir).resolve()
        self.isolated = True
        self.use_cgroups = True
        self._sessions: dict[str, Session] = {}
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._spawn_lock = asyncio.Lock()
        self._restart_lock = asyncio.Lock()
        self._warm: list[Session] = []  # started, not yet handed out
        self._warm_wanted = asyncio.Event()
        self._warm_keeper: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self.session_root = self.sessions_dir
        self._starting: asyncio.Task | None = None
        self._closing = False
        self._uids: set[int] = set()  # uids of live sessions
        self.parent_group: cgroups.ParentGroup | None = None

    # ---- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        missing = missing_isolation(self.settings)
        if missing and not self.settings.sandbox_unsafe:
            raise IsolationUnavailable("Sandboxes cannot be isolated on this host; missing: " + "; ".join(missing)
                                       + ". Set CODEINTERP_SANDBOX_UNSAFE=1 to run them without isolation.")
        self.isolated = not missing
        self.use_cgroups = self.isolated
        if self.use_cgroups:
            self.parent_group = await asyncio.to_thread(cgroups.ParentGroup, total_memory_mb(self.settings))
        python = self.settings.sandbox_env / "bin" / "python"
        if not python.exists():
            raise SandboxError(f"The sandbox's Python environment is missing ({python}); run scripts/setup.sh.")
        # The warm parent takes seconds to import the data stack: it starts in the background and
        # the first create_session waits for it, so that a server answers at once.
        self._starting = asyncio.create_task(self._start_zygote())
        self._reaper = asyncio.create_task(self._reap_idle())
        self._warm_keeper = asyncio.create_task(self._keep_warm())
        self._warm_wanted.set()

    @property
    def warm_ready(self) -> int:
        """How many warm sessions are started and waiting to be handed out."""
        return sum(1 for session in self._warm if session.kernel is not None)

    async def wait_ready(self) -> None:
        """Wait until the warm parent is ready to fork kernels (raises if it failed to start)."""
        if self._starting is None:
            raise SandboxError("The sandbox manager was not started.")
        await asyncio.shield(self._starting)

    def _bwrap_command(self, base_prefix: str, python_version: str) -> list[str]:
        command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                   "--cap-add", "ALL", "--clearenv"]
        for path in ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc/fonts", "/etc/ssl", "/etc/localtime",
                     "/etc/ld.so.cache", "/etc/mime.types"):
            if os.path.exists(path):
                command += ["--ro-bind", path, path]
        # bwrap would make the missing parents (/root, say) private to root; the kernel runs as nobody.
        for parent in reversed(Path(base_prefix).parents[:-1]):
            command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", base_prefix, base_prefix, "--perms", "0755", "--dir", "/opt",
                    "--ro-bind", str(self.settings.sandbox_env.resolve()), INSIDE_ENV]
        # The base interpreter's own packages are the host's business, not the sandbox's.
        base_packages = Path(base_prefix) / "lib" / f"python{python_version}" / "site-packages"
        if base_packages.is_dir():
            command += ["--tmpfs", str(base_packages)]
        # Every session's /mnt/data lives in one memory-backed filesystem that only the warm parent
        # sees (the host reaches it through /proc); it goes away with the parent and cannot fill the disk.
        sessions_bytes = str(self.settings.sandbox_sessions_tmpfs_mb * 1024 * 1024)
        command += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                    "--size", sessions_bytes, "--perms", "0711", "--tmpfs", "/sessions",
                    "--dir", "/mnt/data", "--dir", INSIDE]
        for name in SANDBOX_FILES:
            command += ["--ro-bind", str(HERE / name), f"{INSIDE}/{name}"]
        command += ["--remount-ro", "/"]
        return command

    def _kernel_env(self) -> dict[str, str]:
        env_dir = INSIDE_ENV if self.isolated else str(self.settings.sandbox_env.resolve())
        has_font_cache = (self.settings.sandbox_env / "mplconfig").is_dir()
        return {"PATH": f"{env_dir}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "MPLCONFIGDIR": "/tmp/.matplotlib", "MPL_CACHE_SEED": f"{env_dir}/mplconfig" if has_font_cache else "",
                "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp"}

    async def _start_zygote(self) -> None:
        python = self.settings.sandbox_env / "bin" / "python"
        probe = await asyncio.to_thread(
            subprocess.run, [str(python), "-I", "-c", "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True)
        base_prefix, python_version = probe.stdout.split()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = self._kernel_env()
        if self.isolated:
            command = self._bwrap_command(base_prefix, python_version)
            for key, value in env.items():
                command += ["--setenv", key, value]
            command += ["--", f"{INSIDE_ENV}/bin/python", f"{INSIDE}/zygote.py", str(theirs.fileno())]
            run_env = {}
        else:
            command = [str(python.absolute()), str(HERE / "zygote.py"), str(theirs.fileno())]
            run_env = env
        # No terminal reaches the sandboxes: the parent leads a session of its own, and none of its
        # standard streams is the server's (bubblewrap would also bind a terminal on /dev/console).
        self._zygote = subprocess.Popen(command, pass_fds=(theirs.fileno(),), env=run_env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=_log_lines, args=(self._zygote.stderr,), daemon=True,
                         name="sandbox-parent-stderr").start()
        theirs.close()
        ours.setblocking(False)
        self._control = ours
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(120):
                ready = await loop.sock_recv(ours, 4096)
        except TimeoutError:
            ready = b""
        if not ready:
            self._zygote.kill()
            raise SandboxError("The sandbox parent failed to start; see the server log for its error.")
        if self.isolated:
            self.session_root = Path(f"/proc/{json.loads(ready)['pid']}/root/sessions")
        else:
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            self.session_root = self.sessions_dir

    async def close(self) -> None:
        self._closing = True
        self._warm_wanted.set()
        for task in (self._reaper, self._warm_keeper, self._starting):
            if task is not None:
                await _stop(task)
        for session in list(self._warm):
            await session.close()
        for session in list(self._sessions.values()):
            await session.close()
        if self._control:
            self._control.close()
        if self._zygote:
            self._zygote.kill()
            await asyncio.to_thread(self._zygote.wait)
        if self.parent_group is not None:
            await asyncio.to_thread(self.parent_group.remove)

    async def _restart_zygote(self) -> None:
        """The warm parent died (killed on the host, say): every session's kernel and files went with
        it, so those sessions end, and a new parent starts."""
        log.error("the sandbox parent exited with status %s; restarting it and closing %d sessions",
                  self._zygote.returncode, len(self._sessions))
        for session in list(self._sessions.values()) + list(self._warm):
            await session.close()
        if self._control:
            self._control.close()
        self._starting = asyncio.create_task(self._start_zygote())
        await self.wait_ready()

    def isolation_report(self) -> dict[str, bool | str]:
        return isolation_report(self.settings)

    # ---- sessions ------------------------------------------------------------------------

    async def create_session(self, limits: Limits | None = None, expiry_seconds: float | None = None) -> Session:
        await self.wait_ready()
        async with self._restart_lock:
            if self._zygote is not None and self._zygote.poll() is not None:
                await self._restart_zygote()
        if len(self._sessions) >= self.settings.sandbox_max_sessions:
            raise SessionLimitReached(f"This server runs at most {self.settings.sandbox_max_sessions} sandbox "
                                      "sessions at once; try again when one ends.")
        limits = limits or limits_from(self.settings)
        expiry = expiry_seconds if expiry_seconds is not None else self.settings.sandbox_idle_expiry_seconds
        session = self._take_warm(limits)
        if session is None:
            session = Session(self, "sbx_" + uuid.uuid4().hex[:24], limits, expiry)
            self._sessions[session.id] = session
            await self._prepare(session)
        else:
            session.expiry_seconds = expiry
            session.created_at = time.time()
            session.last_used = time.monotonic()
            self._sessions[session.id] = session
        self._warm_wanted.set()
        return session

    async def _prepare(self, session: Session) -> None:
        """The session's directory and first kernel."""
        try:
            await asyncio.to_thread(self._make_data_dir, session.data_dir, session.uid)
            await session._start_kernel()
        except BaseException:
            await session.close()
            raise

    def _take_warm(self, limits: Limits) -> Session | None:
        """A warm session with these limits, if one is ready (one still starting has no kernel yet)."""
        for session in list(self._warm):
            if session.kernel is None:
                continue
            if not session.kernel.alive():
                self._warm.remove(session)
                asyncio.ensure_future(session.close())
            elif session.limits == limits:
                self._warm.remove(session)
                return session
        return None

    async def _keep_warm(self) -> None:
        """Keep `sandbox_warm_sessions` sessions with the default limits started ahead of demand."""
        while not self._closing:
            await self._warm_wanted.wait()
            self._warm_wanted.clear()
            try:
                await self.wait_ready()
                while (not self._closing and len(self._warm) < self.settings.sandbox_warm_sessions
                       and len(self._sessions) + len(self._warm) < self.settings.sandbox_max_sessions):
                    session = Session(self, "sbx_" + uuid.uuid4().hex[:24], limits_from(self.settings),
                                      self.settings.sandbox_idle_expiry_seconds)
                    self._warm.append(session)  # counted against the cap while it starts
                    try:
                        await self._prepare(session)
                    except BaseException:
                        if session in self._warm:
                            self._warm.remove(session)
                        raise
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - sessions start on demand meanwhile
                log.exception("starting a warm sandbox session failed")
                await asyncio.sleep(1)

    def _make_data_dir(self, path: Path, uid: int) -> None:
        path.mkdir(mode=0o755)
        if self.isolated:
            os.chown(path, uid, uid)

    def _allocate_uid(self) -> int:
        """A uid of its own for a new session, drawn at random so that a uid just released (and
        another server's sessions on this host) are unlikely to be met again."""
        while True:
            uid = self.settings.sandbox_uid_base + secrets.randbelow(UID_SPAN)
            if uid not in self._uids:
                self._uids.add(uid)
                return uid

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def _release(self, session_id: str) -> None:
        """Tell the warm parent to unmount a closed session's /mnt/data filesystem."""
        if self.isolated and self._control is not None and self._zygote is not None and self._zygote.poll() is None:
            with contextlib.suppress(OSError):
                self._control.send(json.dumps({"type": "release", "session": session_id}).encode())

    def _forget(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        if session in self._warm:
            self._warm.remove(session)

    @property
    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    async def _spawn(self, session: Session) -> Kernel:
        """Ask the zygote for a kernel, put it in the session's groups, and let it start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = {"session": session.id, "isolate": self.isolated, "uid": session.uid, "tmp_mb": session.limits.tmp_mb,
                   "file_size_mb": session.limits.file_size_mb, "output_bytes": session.limits.output_bytes,
                   "data_mb": session.limits.data_mb, "env": self._kernel_env(),
                   "workdir": "/mnt/data" if self.isolated else str(session.data_dir)}
        async with self._spawn_lock:
            if self._zygote is None or self._zygote.poll() is not None:
                ours.close()
                theirs.close()
                raise SandboxError("The sandbox parent is not running.")
            socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
        theirs.close()
        channel = KernelChannel(ours)
        channel.start_execution(START_BYTES)
        try:
            async with asyncio.timeout(30):
                message = await channel.receive()
        except (TimeoutError, ValueError, OutputOverrun) as error:
            message = {"type": "failed", "error": repr(error)}
        if not isinstance(message, dict) or message.get("type") != "pid" or not isinstance(message.get("pid"), int):
            channel.close()
            error = message.get("error") if isinstance(message, dict) else None
            raise SandboxError(f"A sandbox kernel failed to start: {error or 'no answer'}")
        kernel = Kernel(channel, session.group)
        try:
            # The kernel waits for GO: it is alive, so its PID is still its own.
            channel.attach(message["pid"])
            if session.group:
                await asyncio.to_thread(session.group.add, kernel.pid)
            if channel.exited():
                raise SandboxError("A sandbox kernel exited before it started.")
            await channel.send_raw(GO)
        except BaseException as error:
            detail = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    answer = await channel.receive()
                    detail = answer.get("error") if isinstance(answer, dict) else None
            kernel.kill()
            if detail:
                raise SandboxError(f"A sandbox kernel failed to start: {detail}") from error
            raise
        return kernel

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(REAPER_INTERVAL)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if not session._lock.locked() and now - session.last_used > session.expiry_seconds:
                    log.info("closing idle sandbox session %s", session.id)
                    try:
                        await session.close()
                    except Exception:  # noqa: BLE001 - one bad session must not stop the reaper
                        log.exception("closing idle sandbox session %s failed", session.id)


def total_memory_mb(settings: Settings) -> int:
    """The memory all sandboxes together may use: the setting, or three quarters of the host's."""
    if settings.sandbox_total_memory_mb:
        return settings.sandbox_total_memory_mb
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4 // (1024 * 1024)


def _log_lines(stream) -> None:
    """Log what the sandbox parent writes to its stderr (its own errors), line by line, bounded."""
    with stream:
        for line in iter(lambda: stream.readline(65536), b""):
            log.warning("sandbox parent: %s", line[:2000].decode("utf-8", "replace").rstrip())


async def _stop(task: asyncio.Task, grace: float = 10) -> None:
    """Cancel a background task and wait briefly for it to end: a cancellation can be lost (a
    wait_for whose inner call finished at the same moment), and closing must not hang on it."""
    task.cancel()
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        log.error("a sandbox background task did not stop within %s seconds", grace)
    elif not task.cancelled() and task.exception() is not None:
        log.error("a sandbox background task ended with an error: %r", task.exception())


__all__ = ["SandboxManager", "Session", "limits_from", "isolation_report"]

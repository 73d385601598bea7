"""The warm parent (the zygote): one process inside bubblewrap that imported the data stack once
and forks a kernel per request on its control socket."""

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import threading
from pathlib import Path

from codeinterp.config import Settings
from codeinterp.sandbox.bwrap import cgroups
from codeinterp.sandbox.bwrap.channel import START_BYTES, KernelChannel, OutputOverrun
from codeinterp.sandbox.bwrap.command import parent_command
from codeinterp.sandbox.types import SandboxError

log = logging.getLogger(__name__)
GO = b'{"type": "go"}\n'


class WarmParent:
    """`process` is the parent's host process once started; `session_root` is where the host
    reaches the sessions' directories (inside the parent's /sessions when isolated)."""

    def __init__(self, settings: Settings, isolated: bool) -> None:
        self.settings = settings
        self.isolated = isolated
        self.process: subprocess.Popen | None = None
        self.session_root = Path(settings.sessions_dir).resolve()
        self._control: socket.socket | None = None
        self._spawn_lock = asyncio.Lock()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        """Start the parent and wait until it is ready to fork kernels."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command, env = await asyncio.to_thread(parent_command, self.settings, self.isolated, theirs.fileno())
        # No terminal reaches the sandboxes: the parent leads a session of its own, and none of its
        # standard streams is the server's (bubblewrap would also bind a terminal on /dev/console).
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=_log_lines, args=(self.process.stderr,), daemon=True,
                         name="sandbox-parent-stderr").start()
        theirs.close()
        ours.setblocking(False)
        self._control = ours
        try:
            async with asyncio.timeout(120):
                ready = await asyncio.get_running_loop().sock_recv(ours, 4096)
        except TimeoutError:
            ready = b""
        if not ready:
            self.process.kill()
            raise SandboxError("The sandbox parent failed to start; see the server log for its error.")
        if self.isolated:
            self.session_root = Path(f"/proc/{json.loads(ready)['pid']}/root/sessions")
        else:
            self.session_root.mkdir(parents=True, exist_ok=True)

    async def spawn(self, request: dict, group: cgroups.SessionGroup | None) -> KernelChannel:
        """Ask the parent for a kernel, put it in `group` (if any), and let it start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        async with self._spawn_lock:
            if not self.running():
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
        try:
            # The kernel waits for GO: it is alive, so its PID is still its own.
            channel.attach(message["pid"])
            if group:
                await asyncio.to_thread(group.add, channel.pid)
            if channel.exited():
                raise SandboxError("A sandbox kernel exited before it started.")
            await channel.send_raw(GO)
        except BaseException as error:
            detail = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    answer = await channel.receive()
                    detail = answer.get("error") if isinstance(answer, dict) else None
            channel.close()
            if group:
                group.kill()
            if detail:
                raise SandboxError(f"A sandbox kernel failed to start: {detail}") from error
            raise
        return channel

    def release(self, session_id: str) -> None:
        """Tell the parent to unmount a closed session's /mnt/data filesystem."""
        if self.isolated and self._control is not None and self.running():
            with contextlib.suppress(OSError):
                self._control.send(json.dumps({"type": "release", "session": session_id}).encode())

    async def stop(self) -> None:
        if self._control:
            self._control.close()
        if self.process:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    def close_control(self) -> None:
        """Before a restart: the dead parent's socket goes."""
        if self._control:
            self._control.close()


def _log_lines(stream) -> None:
    """Log what the sandbox parent writes to its stderr (its own errors), line by line, bounded."""
    with stream:
        for line in iter(lambda: stream.readline(65536), b""):
            log.warning("sandbox parent: %s", line[:2000].decode("utf-8", "replace").rstrip())

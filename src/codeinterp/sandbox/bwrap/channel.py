"""The host's end of one kernel: its socket, and a pidfd for its process.

Code in a kernel can write anything to its socket and can make its process exit at any time,
so this end trusts neither:
- the socket is read only while an execution runs, and at most `limit` bytes per execution,
  counted on the wire (a line being read included): a kernel can never make the server hold or
  parse more than that, nor park bytes in the server's memory between executions;
- every line is parsed by orjson (bounded nesting), and a line that is not a JSON object is the
  caller's to reject;
- signals go through a pidfd opened while the kernel was provably alive and waiting for the
  manager's word to start, so that they reach this process and never another that took its PID.
"""

import asyncio
import contextlib
import os
import select
import signal
import socket

import base64
import binascii

import orjson

from codeinterp.sandbox.types import Limits

CHUNK = 256 * 1024
START_BYTES = 64 * 1024  # what a kernel's start may send (its PID, or why it failed)
# Beyond its output budget, what a kernel may send per execution: its start, the end of the cell,
# notices, and what the previous cell's threads wrote after it ended (charged to that cell's budget).
PROTOCOL_SLACK = 64 * 1024

_FIELDS = {"stream": ("text",), "result": ("text",), "display": ("png",), "error": ("traceback", "ename", "evalue"),
           "notice": ("text",), "done": ("status",)}


def well_formed(message: object) -> bool:
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
    """Bytes read from a kernel per execution: the output cap of this cell and of the one before
    (whose threads may still write), and the protocol's own messages."""
    return 2 * limits.output_bytes + PROTOCOL_SLACK


class OutputOverrun(Exception):
    """The kernel sent more bytes in one execution than the budget allows."""


class KernelChannel:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.pid: int | None = None
        self.pidfd: int | None = None
        self._buffer = bytearray()
        self._eof = False
        self._reading: asyncio.Future | None = None  # the pending read, while `receive` waits
        self.received = 0  # bytes read since the last `start_execution`
        self.limit = 0

    def attach(self, pid: int) -> None:
        """Open a pidfd for the kernel's process (while it waits for the word to start, so that it
        cannot have exited and left its PID to another process)."""
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)

    def start_execution(self, limit: int) -> None:
        """Count from here: at most `limit` bytes are read until the next call. Bytes left over
        from the previous execution are dropped."""
        self._buffer.clear()
        self.received = 0
        self.limit = limit

    async def send(self, message: dict) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, orjson.dumps(message) + b"\n")

    async def send_raw(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def receive(self) -> object | None:
        """The next message (a parsed JSON value); None at the end of the socket. Raises
        ValueError for a line that is not JSON and OutputOverrun past the budget."""
        loop = asyncio.get_running_loop()
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                return orjson.loads(line)
            if self._eof:
                return None
            room = self.limit - self.received
            if room <= 0:
                raise OutputOverrun(f"more than {self.limit} bytes")
            # Held so that `close` can end a wait: a socket closed under a pending read never wakes it.
            self._reading = asyncio.ensure_future(loop.sock_recv(self.sock, min(room, CHUNK)))
            try:
                data = await self._reading
            except ConnectionError:
                data = b""
            except asyncio.CancelledError:
                if not self._eof or asyncio.current_task().cancelling():  # cancelled from outside, not by `close`
                    raise
                data = b""
            finally:
                self._reading = None
            if not data:
                self._eof = True
                self._buffer.clear()  # a line cut short by the end is not a message
                return None
            self.received += len(data)
            self._buffer += data

    def exited(self) -> bool:
        """Whether the kernel's process has exited (its pidfd turns readable then)."""
        if self.pidfd is None:
            return True
        return bool(select.select([self.pidfd], [], [], 0)[0])

    def signal(self, signum: int) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signum)

    def close(self) -> None:
        """Kill the process (if any) and close the socket and the pidfd."""
        self.signal(signal.SIGKILL)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._eof = True
        if self._reading is not None:
            self._reading.cancel()
        self.sock.close()

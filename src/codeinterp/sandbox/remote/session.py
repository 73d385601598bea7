"""One session of the `remote` backend: a bubblewrap session on one sandbox host, driven over HTTP.

A session stays on its host. When its host cannot be reached (killed, restarted, cut off), the
session is lost as a kernel that dies is: a cell running then ends `crashed` with `state_lost`
and a notice, the session closes, and its caller's next session starts elsewhere.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

import httpx

from codeinterp.sandbox.interface import OutputCallback, SandboxSession
from codeinterp.sandbox.remote import wire
from codeinterp.sandbox.types import ExecutionResult, FileTooLarge, Limits, OutputEvent, SandboxFile, SessionClosed

if TYPE_CHECKING:
    from codeinterp.sandbox.remote.backend import Host, RemoteBackend

# A streaming answer in which nothing arrives for this long (the host sends heartbeats) is lost.
READ_TIMEOUT = 4 * wire.HEARTBEAT_SECONDS
STREAM_TIMEOUT = httpx.Timeout(10.0, read=READ_TIMEOUT)
LOST_NOTICE = ("[the sandbox host of this session was lost; the session ended and its state (variables, "
               "imports and files in /mnt/data) is lost; a new session starts on next use]")


class BadAnswer(Exception):
    """A line of an execution's answer that is not what the wire says (a host gone wrong)."""


def _parse(line: str) -> tuple[str, object]:
    """One line of an execution's answer: ("output", OutputEvent), ("result", ExecutionResult),
    ("error", the error object) or ("", None) for a heartbeat or an empty line."""
    try:
        message = json.loads(line) if line else {}
        if "output" in message:
            return "output", wire.output_from_json(message["output"])
        if "result" in message:
            return "result", wire.result_from_json(message["result"])
        if "error" in message:
            return "error", message
        return "", None
    except (ValueError, KeyError, TypeError) as error:
        raise BadAnswer(f"The sandbox host sent {line[:200]!r}.") from error


class RemoteSession(SandboxSession):
    def __init__(self, backend: "RemoteBackend", host: "Host", session_id: str, limits: Limits,
                 expiry_seconds: float) -> None:
        self.backend = backend
        self.host = host
        self.id = session_id
        self.limits = limits
        self.expiry_seconds = expiry_seconds
        self.closed = False
        self.last_used = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def _url(self) -> str:
        return f"/sessions/{self.id}"

    def busy(self) -> bool:
        return self._lock.locked()

    def expired(self) -> bool:
        return not self.busy() and time.monotonic() - self.last_used > self.expiry_seconds

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosed(f"Session {self.id} is closed.")

    async def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 300:
            return
        try:
            error = wire.error_from(json.loads(await response.aread()))
        except ValueError:
            error = wire.error_from({"message": f"The sandbox host answered {response.status_code}."})
        if isinstance(error, SessionClosed):
            self.closed = True  # closed or expired on its host
            self.backend.forget(self)
        raise error

    async def _lost(self, error: Exception) -> None:
        """The host did not answer: this session is gone (and the host is checked at once). A host
        that answers again is asked to close it, so that it does not live on there unused."""
        self.closed = True
        try:
            await self.backend.check_host(self.host)
            if self.host.up:
                with contextlib.suppress(httpx.HTTPError):
                    await self.host.client.delete(self._url)
        finally:
            self.backend.forget(self)

    # ---- execution -----------------------------------------------------------------------

    async def execute(self, code: str, timeout: float | None = None,
                      on_output: OutputCallback | None = None) -> ExecutionResult:
        self._check_open()
        async with self._lock:
            self._check_open()
            try:
                return await self._execute(code, timeout, on_output)
            finally:
                self.last_used = time.monotonic()

    async def _execute(self, code: str, timeout: float | None, on_output: OutputCallback | None) -> ExecutionResult:
        started = time.monotonic()
        outputs: list[OutputEvent] = []

        async def emit(event: OutputEvent) -> None:  # outputs kept as the host keeps them: one per run of a stream
            last = outputs[-1] if outputs else None
            if last is not None and event.kind in ("stdout", "stderr") and last.kind == event.kind:
                last.text += event.text
            else:
                outputs.append(OutputEvent(kind=event.kind, text=event.text, png=event.png, ename=event.ename,
                                           evalue=event.evalue))
            if on_output is not None and asyncio.iscoroutine(maybe := on_output(event)):
                await maybe

        try:
            async with self.host.client.stream("POST", self._url + "/execute", json={"code": code, "timeout": timeout},
                                               timeout=STREAM_TIMEOUT) as response:
                await self._raise_for(response)
                result = None
                async for line in response.aiter_lines():  # read to its end: the connection is kept for reuse
                    kind, value = _parse(line)
                    if kind == "output":
                        await emit(value)
                    elif kind == "result":
                        result = value
                    elif kind == "error":
                        await self._raise_for(httpx.Response(400, json=value))
                if result is not None:
                    return result
        except (httpx.TransportError, BadAnswer) as error:
            if self.closed:
                raise SessionClosed(f"Session {self.id} was closed while it ran code.") from error
            await self._lost(error)
        else:
            if self.closed:
                raise SessionClosed(f"Session {self.id} was closed while it ran code.")
            await self._lost(ConnectionError("the execution's answer ended early"))
        await emit(OutputEvent(kind="notice", text=LOST_NOTICE))
        return ExecutionResult(status="crashed", outputs=outputs, state_lost=True,
                               duration_seconds=time.monotonic() - started)

    async def interrupt(self) -> None:
        if not self.closed:
            with contextlib.suppress(httpx.HTTPError):
                await self.host.client.post(self._url + "/interrupt")

    # ---- files ---------------------------------------------------------------------------

    async def put_file(self, path: str, data: bytes | AsyncIterable[bytes]) -> None:
        self._check_open()
        content = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        try:
            response = await self.host.client.put(self._url + "/file", params={"path": wire.encode_path(path)},
                                                  content=content, timeout=STREAM_TIMEOUT)
        except httpx.TransportError as error:
            await self._lost(error)
            raise SessionClosed(f"Session {self.id} was lost with its sandbox host.") from error
        await self._raise_for(response)
        self.last_used = time.monotonic()

    async def read_file(self, path: str, max_bytes: int | None = None) -> AsyncIterator[bytes]:
        self._check_open()
        params = {"path": wire.encode_path(path)}
        if max_bytes is not None:
            params["max_bytes"] = str(max_bytes)
        try:
            async with self.host.client.stream("GET", self._url + "/file", params=params,
                                               timeout=STREAM_TIMEOUT) as response:
                await self._raise_for(response)
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if max_bytes is not None and received > max_bytes:
                        raise FileTooLarge(f"/mnt/data/{path} holds more than {max_bytes} bytes")
                    yield chunk
        except httpx.TransportError as error:
            await self._lost(error)
            raise SessionClosed(f"Session {self.id} was lost with its sandbox host.") from error

    async def list_files(self) -> list[SandboxFile]:
        self._check_open()
        try:
            response = await self.host.client.get(self._url + "/files", timeout=STREAM_TIMEOUT)
        except httpx.TransportError as error:
            await self._lost(error)
            raise SessionClosed(f"Session {self.id} was lost with its sandbox host.") from error
        await self._raise_for(response)
        return [wire.file_from_json(f) for f in response.json()]

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            with contextlib.suppress(httpx.HTTPError):
                await self.host.client.delete(self._url)
        finally:
            self.backend.forget(self)

    def lose(self) -> None:
        """Its host is gone: the session is closed here without asking the host."""
        self.closed = True
        self.backend.forget(self)

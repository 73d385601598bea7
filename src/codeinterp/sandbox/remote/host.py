"""`codeinterp sandbox-host`: the bubblewrap backend of this machine served over HTTP to the
`remote` backend of API servers (the routes and shapes are in `wire.py`).

It is the local backend behind HTTP: every session is a `BwrapBackend` session with all its
isolation and limits; this module only translates. Every request must carry the shared secret
(compared in constant time) or is refused before anything is read; request bodies are bounded.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from codeinterp.config import Settings
from codeinterp.sandbox.bwrap import BwrapBackend
from codeinterp.sandbox.remote import wire
from codeinterp.sandbox.types import FileTooLarge, SandboxError, SessionClosed

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
STATUS = {"session_closed": 404, "not_found": 404, "session_limit": 429, "file_too_large": 413,
          "isolation_unavailable": 503, "sandbox_error": 400, "bad_request": 400, "unauthorized": 401}


class HostError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def error_response(kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=STATUS.get(kind, 400))


class RequireSecret:
    """Refuses, before the application reads anything, every request without the shared secret."""

    def __init__(self, app, secret: str) -> None:
        self.app = app
        self.expected = f"Bearer {secret}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(wire.SECRET_HEADER.encode(), b"")
            if not hmac.compare_digest(given, self.expected):
                await error_response("unauthorized", "The sandbox host's secret is missing or wrong.")(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


async def read_json(request: Request) -> dict:
    """The request's JSON object, refused past `wire.MAX_JSON_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > wire.MAX_JSON_BYTES:
        raise HostError("bad_request", f"The request body is larger than {wire.MAX_JSON_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > wire.MAX_JSON_BYTES:
            raise HostError("bad_request", f"The request body is larger than {wire.MAX_JSON_BYTES} bytes.")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise HostError("bad_request", "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise HostError("bad_request", "The request body is not a JSON object.")
    return data


class SandboxHost:
    """The routes over one bubblewrap backend."""

    def __init__(self, settings: Settings, backend: BwrapBackend | None = None) -> None:
        self.settings = settings
        self.backend = backend or BwrapBackend(settings)
        self.host_id = secrets.token_hex(8)  # a restarted host is another host: its sessions are gone

    def app(self) -> Starlette:
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/sessions", self.create_session, methods=["POST"]),
            Route("/sessions/{id}", self.close_session, methods=["DELETE"]),
            Route("/sessions/{id}/execute", self.execute, methods=["POST"]),
            Route("/sessions/{id}/interrupt", self.interrupt, methods=["POST"]),
            Route("/sessions/{id}/files", self.list_files, methods=["GET"]),
            Route("/sessions/{id}/file", self.put_file, methods=["PUT"]),
            Route("/sessions/{id}/file", self.read_file, methods=["GET"]),
        ]

        @contextlib.asynccontextmanager
        async def lifespan(app):
            await self.backend.start()
            try:
                yield
            finally:
                await self.backend.stop()

        app = Starlette(routes=routes, lifespan=lifespan,
                        exception_handlers={HostError: lambda request, e: error_response(e.kind, str(e))})
        secret = self.settings.sandbox_host_secret
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            raise SandboxError(f"Set CODEINTERP_SANDBOX_HOST_SECRET (at least {MIN_SECRET_LENGTH} characters): "
                               "a sandbox host refuses to run without its shared secret.")
        app.add_middleware(RequireSecret, secret=secret)
        return app

    def load(self) -> dict:
        return {"host_id": self.host_id, "sessions": len(self.backend.sessions),
                "max_sessions": self.settings.sandbox_max_sessions, "ready": self.backend.ready()}

    def _session(self, request: Request):
        session = self.backend.get(request.path_params["id"])
        if session is None:
            raise HostError("session_closed", f"Session {request.path_params['id']} is closed or unknown.")
        return session

    async def health(self, request: Request) -> Response:
        return JSONResponse(self.load())

    async def create_session(self, request: Request) -> Response:
        body = await read_json(request)
        try:
            limits = wire.limits_from_json(body["limits"]) if body.get("limits") is not None else None
            expiry = float(body["expiry_seconds"]) if body.get("expiry_seconds") is not None else None
        except (KeyError, TypeError, ValueError):
            raise HostError("bad_request", "limits or expiry_seconds are not well formed.") from None
        if limits is not None and min(vars(limits).values()) <= 0:
            raise HostError("bad_request", "Every limit must be positive.")
        try:
            session = await self.backend.create_session(limits, expiry)
        except SandboxError as error:
            return error_response(wire.error_kind(error), str(error))
        return JSONResponse({"id": session.id, "limits": wire.limits_to_json(session.limits), **self.load()})

    async def close_session(self, request: Request) -> Response:
        session = self.backend.get(request.path_params["id"])
        if session is not None:
            await session.close()
        return Response(status_code=204)

    async def execute(self, request: Request) -> Response:
        session = self._session(request)
        body = await read_json(request)
        code, timeout = body.get("code"), body.get("timeout")
        if not isinstance(code, str) or not (timeout is None or isinstance(timeout, (int, float)) and timeout > 0):
            raise HostError("bad_request", "code must be a string and timeout a positive number or null.")
        return ExecutionStream(session, code, timeout)

    async def interrupt(self, request: Request) -> Response:
        session = self.backend.get(request.path_params["id"])
        if session is not None:
            await session.interrupt()
        return Response(status_code=204)

    async def list_files(self, request: Request) -> Response:
        try:
            files = await self._session(request).list_files()
        except SessionClosed as error:
            return error_response("session_closed", str(error))
        return JSONResponse([wire.file_to_json(f) for f in files])

    def _path(self, request: Request) -> str:
        path = request.query_params.get("path")
        if not path:
            raise HostError("bad_request", "The path query parameter is missing.")
        return wire.decode_path(path)

    async def put_file(self, request: Request) -> Response:
        session = self._session(request)
        path = self._path(request)
        cap = session.limits.file_size_mb * 1024 * 1024

        async def body() -> AsyncIterator[bytes]:
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > cap:
                    raise FileTooLarge(f"The file is larger than the session's file size limit ({cap} bytes).")
                yield chunk

        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return error_response("file_too_large", f"The file is larger than the session's limit ({cap} bytes).")
        try:
            await session.put_file(path, body())
        except ClientDisconnect:
            return Response(status_code=400)
        except (SandboxError, OSError) as error:
            kind = wire.error_kind(error) if isinstance(error, SandboxError) else "sandbox_error"
            return error_response(kind, str(error))
        return Response(status_code=204)

    async def read_file(self, request: Request) -> Response:
        session = self._session(request)
        path = self._path(request)
        max_bytes = request.query_params.get("max_bytes")
        if max_bytes is not None and not max_bytes.isdigit():
            raise HostError("bad_request", "max_bytes must be a whole number.")
        # One byte past max_bytes is sent so that the client can tell a file of max_bytes from a larger one.
        left = int(max_bytes) + 1 if max_bytes is not None else None
        chunks = session.read_file(path).__aiter__()
        try:
            first = await anext(chunks, b"")
        except FileNotFoundError as error:
            return error_response("not_found", str(error))
        except SandboxError as error:
            return error_response(wire.error_kind(error), str(error))

        async def body() -> AsyncIterator[bytes]:
            nonlocal left
            try:
                chunk = first
                while chunk:
                    if left is not None:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    yield chunk
                    if left == 0:
                        return
                    chunk = await anext(chunks, b"")
            finally:
                await chunks.aclose()

        return StreamingResponse(body(), media_type="application/octet-stream")


class ExecutionStream(Response):
    """One execution as NDJSON. A client that goes away cancels the execution (the local backend
    then interrupts the cell), as a caller cancelling `execute` does."""

    def __init__(self, session, code: str, timeout: float | None) -> None:
        self.status_code = 200
        self.raw_headers = [(b"content-type", b"application/x-ndjson")]  # no length: it streams
        self.background = None
        self.session, self.code, self.timeout = session, code, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lines: asyncio.Queue[bytes] = asyncio.Queue()

        def on_output(event) -> None:
            lines.put_nowait(json.dumps({"output": wire.output_to_json(event)}).encode() + b"\n")

        async def run() -> None:
            try:
                result = await self.session.execute(self.code, timeout=self.timeout, on_output=on_output)
                line = {"result": wire.result_to_json(result)}
            except SandboxError as error:
                line = {"error": wire.error_kind(error), "message": str(error)}
            except Exception as error:  # noqa: BLE001 - the client is told; the host lives on
                log.exception("an execution failed on the sandbox host")
                line = {"error": "sandbox_error", "message": f"The sandbox host failed: {error}"}
            lines.put_nowait(json.dumps(line).encode() + b"\n")

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        execution = asyncio.create_task(run())
        watcher = asyncio.create_task(disconnected())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while not (execution.done() and lines.empty()):
                getting = asyncio.ensure_future(lines.get())
                done, _ = await asyncio.wait({getting, watcher}, timeout=wire.HEARTBEAT_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getting in done:
                    await send({"type": "http.response.body", "body": getting.result(), "more_body": True})
                    continue
                getting.cancel()
                if watcher in done:
                    return
                await send({"type": "http.response.body", "body": b'{"heartbeat": true}\n', "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we wrote
        finally:
            watcher.cancel()
            if not execution.done():
                execution.cancel()
                await asyncio.wait({execution})

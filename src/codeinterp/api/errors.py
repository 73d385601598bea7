"""OpenAI error objects: `{"error": {"message", "type", "param", "code"}}` for every failure."""

import logging
import re
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy.exc import DataError, DBAPIError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeinterp.logs import add_to_context
from codeinterp.store.errors import InvalidRequest, NotFound, QuotaExceeded, StoreError, Unavailable

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(self, status_code: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers


# The HTTP status of each kind of store error (QuotaExceeded: 403, as retrying cannot help).
STORE_ERROR_STATUS = {InvalidRequest: 400, NotFound: 404, QuotaExceeded: 403, Unavailable: 503}


def store_error_status(exc: StoreError) -> int:
    return next((status for kind, status in STORE_ERROR_STATUS.items() if isinstance(exc, kind)), 400)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(status_code: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type, param, code), status_code=status_code, headers=headers)


def _param_name(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    if not parts:
        return None
    name = parts[0]
    for p in parts[1:]:
        name += f"[{p}]" if p.isdigit() else f".{p}"
    return name


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                              "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
                              "what was sent was not valid JSON.)")
    loc = tuple(first.get("loc", ()))
    at = (first.get("ctx") or {}).get("at")  # see schemas.common.invalid
    param = _param_name(loc + tuple(at.split(".")) if at else loc)
    if first.get("type") == "missing":
        if param is None:
            return error_response(400, "The request body is missing or is not a JSON object.")
        return error_response(400, f"Missing required parameter: '{param}'.", param=param,
                              code="missing_required_parameter")
    message = first.get("msg", "Invalid request.")
    if first.get("type") in ("model_attributes_type", "dict_type") and param is None:
        message = "The request body must be a JSON object."
    elif param:
        message = f"Invalid value for '{param}': {message}"
    return error_response(400, message, param=param, code="invalid_value" if param else None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.type, exc.param, exc.code, exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        status = store_error_status(exc)
        return error_response(status, exc.message, "server_error" if status >= 500 else "invalid_request_error",
                              exc.param, exc.code)

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is "data exception": e.g. PostgreSQL refusing a NUL character in text.
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            log.info("the database refused a value: %s", exc.orig)
            return error_response(400, "The request contains a value that cannot be stored (for example a NUL "
                                  "character).")
        raise exc

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}."
        else:
            message = str(exc.detail)
        type_ = "server_error" if exc.status_code >= 500 else "invalid_request_error"
        return error_response(exc.status_code, message, type_, headers=getattr(exc, "headers", None))


class RequestIdMiddleware:
    """Adds `x-request-id` to every response and turns unexpected exceptions into a 500 error object."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _with_id(send: Send, request_id: str) -> Send:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        return send_with_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + uuid.uuid4().hex
        add_to_context(request_id=request_id)
        started = False
        if b"%00" in scope.get("raw_path", b"") or b"%00" in scope.get("query_string", b""):
            response = error_response(400, "The URL contains a NUL character.")
            await response(scope, receive, self._with_id(send, request_id))
            return

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            log.info("request %s: the client went away", request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            if started:
                raise
            response = error_response(500, "The server had an error while processing your request. "
                                      f"Please include the request ID {request_id} if you report it.", "server_error")
            await response(scope, receive, send_with_id)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, by their Content-Length or as they arrive
    (the error reaches the handlers above as an HTTP exception). Paths matching a pattern of `exempt`
    (regular expressions, matched whole) apply limits of their own."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: set[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = [re.compile(pattern) for pattern in exempt]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(p.fullmatch(scope["path"].rstrip("/")) for p in self.exempt):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await error_response(413, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
            return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_with_limit, send)

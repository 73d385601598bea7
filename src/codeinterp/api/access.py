"""One log line and the metrics of each HTTP request: method, route template, status, duration, and
the request, project, thread and run ids where known (the handlers add what they learn)."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codeinterp import metrics
from codeinterp.logs import log_context

log = logging.getLogger("codeinterp.access")
ID_PARAMS = ("thread_id", "run_id")
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}  # asked every few seconds by probes and scrapers: not logged
METHODS = {"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"}  # others are counted as one


class AccessLogMiddleware:
    """Outermost: it opens the request's log context, which the layers inside fill in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context: dict = {}
        log_context.set(context)
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.request_answered(scope["method"] if scope["method"] in METHODS else "other", route, status,
                                     seconds)
            for name in ID_PARAMS:
                value = (scope.get("path_params") or {}).get(name)
                if value and name not in context:
                    context[name] = value
            ids = " ".join(f"{key}={context[key]}" for key in ("request_id", "project_id", "thread_id", "run_id")
                           if context.get(key))
            log.log(logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO, "%s %s %d %.1f ms %s", scope["method"], scope["path"], status, seconds * 1000, ids,
                     extra={"method": scope["method"], "route": route, "path": scope["path"], "status": status,
                            "duration_ms": round(seconds * 1000, 1)})

"""Logging: readable lines by default, one JSON object per line with CODEINTERP_LOG_FORMAT=json.

Every record carries the ids known where it was logged (request, project, run), from `log_context`:
the HTTP layer fills it per request, the run engine per run task.
"""

import contextvars
import json
import logging
import time

# The ids of the request or run being handled; a dict, so that a dependency deeper in the same
# request can add to it (an awaited call shares the request's context).
log_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("codeinterp_log_context", default=None)
CONTEXT_FIELDS = ("request_id", "project_id", "run_id", "thread_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_to_context(**ids: str | None) -> None:
    context = log_context.get()
    if context is not None:
        context.update({key: value for key, value in ids.items() if value})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (log_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key in CONTEXT_FIELDS + ("method", "route", "path", "status", "duration_ms"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger (and uvicorn's, which keep their own handlers otherwise) write to stderr in `log_format`."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

"""What operators and orchestrators ask: /healthz (alive), /readyz (its parts answer) and /metrics
(Prometheus). None needs an API key; /metrics needs CODEINTERP_METRICS_TOKEN when that is set."""

import asyncio
import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from codeinterp import metrics
from codeinterp.api.errors import error_response
from codeinterp.store import files as file_store
from codeinterp.store.runs import count_queued_runs

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
CHECK_TIMEOUT_SECONDS = 5


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.database.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: the database does not answer")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def _database(request: Request) -> None:
    async with request.app.state.database.session() as session:
        await session.execute(text("SELECT 1"))


async def _blobs(_request: Request) -> None:
    await file_store.blob_store().check()


async def _sandboxes(request: Request) -> None:
    await request.app.state.run_worker.check_sandboxes()


CHECKS = {"database": _database, "blobs": _blobs, "sandboxes": _sandboxes}


async def _check(request: Request, name: str) -> str | None:
    """None when the part answers, else why not."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await CHECKS[name](request)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS} s"
    except Exception as error:
        return f"{type(error).__name__}: {error}".strip()[:300]
    return None


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database, the blob store and the sandbox backend answer; 503 (an OpenAI error
    object naming what failed) otherwise."""
    failures = dict(zip(CHECKS, await asyncio.gather(*(_check(request, name) for name in CHECKS))))
    failed = {name: why for name, why in failures.items() if why}
    if failed:
        log.warning("not ready: %s", failed)
        return error_response(503, "Not ready: " + "; ".join(f"{name}: {why}" for name, why in failed.items()),
                              "server_error", code="not_ready")
    return JSONResponse({"status": "ok", "checks": {name: "ok" for name in CHECKS}})


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return error_response(401, "GET /metrics needs `Authorization: Bearer <CODEINTERP_METRICS_TOKEN>`.",
                                  code="invalid_api_key")
    try:
        async with request.app.state.database.session() as session:
            metrics.QUEUE_DEPTH.set(await count_queued_runs(session))
    except Exception:
        log.warning("metrics: counting queued runs failed", exc_info=True)
    counts = request.app.state.run_worker.counts()
    for gauge, key in ((metrics.LIVE_SESSIONS, "live_sessions"), (metrics.WARM_SESSIONS, "warm_sessions"),
                       (metrics.RUNS_ACTIVE, "runs_active")):
        if key in counts:
            gauge.set(counts[key])
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

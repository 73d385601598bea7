"""The FastAPI application: settings, database, blob store, routers and OpenAI-style errors."""

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from codeinterp.api.access import AccessLogMiddleware
from codeinterp.api.errors import BodyLimitMiddleware, RequestIdMiddleware, install_error_handlers
from codeinterp.config import Settings, get_settings
from codeinterp.runs.shared_events import EventFollower, is_postgres
from codeinterp.runs.worker import RunWorker
from codeinterp.store import files as file_store
from codeinterp.store.db import Database, run_migrations_async

log = logging.getLogger(__name__)

# JSON request bodies; file uploads have their own limit (CODEINTERP_MAX_UPLOAD_BYTES).
MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024


async def sweep_blobs(db: Database, older_than: float) -> None:
    async with db.session() as session:
        removed = await file_store.sweep_blobs(session, older_than)
    if removed:
        log.info("removed %d unfinished uploads or orphan blobs", removed)


async def sweep_blobs_periodically(db: Database, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.blob_sweep_interval_seconds)
        try:
            await sweep_blobs(db, settings.blob_orphan_grace_seconds)
        except Exception:
            log.exception("sweeping orphan blobs failed")


async def cancel_and_wait(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        await run_migrations_async(url)
        db = Database(url)
        await db.connect()
        app.state.database = db
        file_store.configure_blobs(settings.blob_dir, settings.blob_url, settings.blob_endpoint)
        # On SQLite this process alone writes blobs, and none is being written yet.
        try:
            await sweep_blobs(db, 0 if url.startswith("sqlite") else settings.blob_orphan_grace_seconds)
        except Exception:  # the blob store is down: serve anyway, /readyz says so
            log.exception("sweeping orphan blobs at start failed")
        # Parts started below register an async `close()` here; they are closed in reverse order.
        app.state.closers = []
        sweeper = asyncio.create_task(sweep_blobs_periodically(db, settings), name="blob sweeper")
        app.state.closers.append(lambda: cancel_and_wait(sweeper))
        app.state.run_worker = RunWorker(settings, url)
        await app.state.run_worker.start()
        app.state.closers.append(app.state.run_worker.stop)
        # The one containers service (threads' and the Containers API's), on the worker's loop; its
        # public methods may be awaited from here.
        app.state.containers = app.state.run_worker.engine.containers
        # With PostgreSQL, streams of runs and responses driven by other replicas are read here.
        app.state.event_follower = None
        if is_postgres(url):
            app.state.event_follower = EventFollower(db, url)
            await app.state.event_follower.start()
            app.state.closers.append(app.state.event_follower.stop)
        try:
            yield
        finally:
            for close in reversed(app.state.closers):
                try:
                    await close()
                except Exception:
                    log.exception("closing %r failed", close)
            await db.close()

    app = FastAPI(title="codeinterp", version="0.1.0", lifespan=lifespan,
                  description="A self-hosted Code Interpreter serving OpenAI's Assistants API.")
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_REQUEST_BODY_BYTES, exempt={"/v1/files", "/v1/containers/[^/]+/files"})
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(AccessLogMiddleware)  # outermost

    from codeinterp.api import (assistants, container_files, containers, files, messages, operate, responses, runs,
                                threads, usage)

    # runs before threads: POST /v1/threads/runs must not match /v1/threads/{thread_id}
    for module in (operate, files, assistants, runs, threads, messages, containers, container_files, responses, usage):
        app.include_router(module.router)
    return app

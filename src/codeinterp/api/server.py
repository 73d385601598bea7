"""`codeinterp serve`: the application under uvicorn (SIGTERM finishes requests, then the lifespan closes)."""

import logging

import uvicorn

from codeinterp.api.app import create_app

# How long an idle connection stays open: longer than clients keep one for reuse (httpx, hence the
# openai SDK, 5 s; Node's agents about as long), so that a client never sends a request on a
# connection the server is closing.
KEEP_ALIVE_SECONDS = 75


def run_server(host: str = "127.0.0.1", port: int = 8000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_graceful_shutdown=30,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                server_header=False, h11_max_incomplete_event_size=64 * 1024)

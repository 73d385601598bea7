"""`codeinterp serve`: the application under uvicorn (SIGTERM finishes requests, then the lifespan closes)."""

import logging

import uvicorn

from codeinterp.api.app import create_app


def run_server(host: str = "127.0.0.1", port: int = 8000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_graceful_shutdown=30,
                server_header=False, h11_max_incomplete_event_size=64 * 1024)

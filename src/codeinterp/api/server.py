"""`codeinterp serve`: the application under uvicorn (SIGTERM finishes requests, then the lifespan closes)."""

import logging

import uvicorn

from codeinterp.api.app import create_app

# How long an idle connection stays open: longer than clients keep one for reuse (httpx, hence the
# openai SDK, 5 s; Node's agents about as long), so that a client never sends a request on a
# connection the server is closing.
KEEP_ALIVE_SECONDS = 75


class Server(uvicorn.Server):
    """uvicorn's server; on SIGTERM or SIGINT, open run streams end at once with an error event
    (uvicorn waits for open responses before it stops the application, and a stream of a long run
    would otherwise hold the shutdown for the whole grace period, then be cut)."""

    def handle_exit(self, sig, frame) -> None:
        run_worker = getattr(self.config.app.state, "run_worker", None)
        if run_worker is not None:
            run_worker.end_streams("The server is shutting down; this run stops and fails. Create a new run.")
        super().handle_exit(sig, frame)


def run_server(host: str = "127.0.0.1", port: int = 8000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(create_app(), host=host, port=port, log_level="info", timeout_graceful_shutdown=30,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            server_header=False, h11_max_incomplete_event_size=64 * 1024)
    Server(config).run()

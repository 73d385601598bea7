"""`codeinterp serve`: the application under uvicorn (SIGTERM finishes requests, then the lifespan closes)."""

import uvicorn

from codeinterp.api.app import create_app
from codeinterp.config import get_settings
from codeinterp.logs import configure_logging

# How long an idle connection stays open: longer than clients keep one for reuse (httpx, hence the
# openai SDK, 5 s; Node's agents about as long), so that a client never sends a request on a
# connection the server is closing.
KEEP_ALIVE_SECONDS = 75


# After the runs' grace period, how long uvicorn still waits for open responses (their streams end
# as their runs do) before it cuts them.
RESPONSES_GRACE_SECONDS = 20


class Server(uvicorn.Server):
    """uvicorn's server; on SIGTERM or SIGINT no new run starts, runs in flight have
    CODEINTERP_SHUTDOWN_GRACE_SECONDS to finish, then those left fail and their streams end with an
    error event (uvicorn waits for open responses, streams included, before it stops the application)."""

    def handle_exit(self, sig, frame) -> None:
        run_worker = getattr(self.config.app.state, "run_worker", None)
        if run_worker is not None and not self.should_exit:
            run_worker.drain(self.config.app.state.settings.shutdown_grace_seconds)
        super().handle_exit(sig, frame)


def run_server(host: str = "127.0.0.1", port: int = 8000) -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    # log_config=None: uvicorn's loggers write through ours; access_log=False: the app logs each request
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=settings.shutdown_grace_seconds + RESPONSES_GRACE_SECONDS,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            server_header=False, h11_max_incomplete_event_size=64 * 1024)
    Server(config).run()

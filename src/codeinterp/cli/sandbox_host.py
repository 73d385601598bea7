"""`codeinterp sandbox-host --listen HOST:PORT`: this machine's bubblewrap sandboxes served over HTTP
(see `codeinterp.sandbox.remote.host`), with TLS and required client certificates when
CODEINTERP_SANDBOX_TLS_CERT, _KEY and _CA are set."""

import logging
import ssl

import typer
import uvicorn

from codeinterp.config import get_settings
from codeinterp.sandbox.remote.host import SandboxHost
from codeinterp.sandbox.types import SandboxError


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter(f"{listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def run_sandbox_host(listen: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = parse_listen(listen)
    settings = get_settings()
    try:
        app = SandboxHost(settings).app()
    except SandboxError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    tls = [settings.sandbox_tls_cert, settings.sandbox_tls_key, settings.sandbox_tls_ca]
    if any(tls) and not all(tls):
        typer.echo("error: set CODEINTERP_SANDBOX_TLS_CERT, _KEY and _CA together (or none)", err=True)
        return 2
    tls_options = {}
    if all(tls):
        tls_options = {"ssl_certfile": str(settings.sandbox_tls_cert), "ssl_keyfile": str(settings.sandbox_tls_key),
                       "ssl_ca_certs": str(settings.sandbox_tls_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False,
                            timeout_graceful_shutdown=10, h11_max_incomplete_event_size=64 * 1024,
                            limit_concurrency=4 * settings.sandbox_max_sessions + 64, **tls_options)
    uvicorn.Server(config).run()
    return 0




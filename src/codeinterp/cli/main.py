"""The `codeinterp` command: serve | exec | doctor | keys | usage.

Each command is thin: it parses arguments and calls the module that owns the work.
"""

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="codeinterp: a self-hosted Code Interpreter")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (they belong to projects).")
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
) -> None:
    """Start the HTTP server (SQLite, local files and bubblewrap sandboxes by default)."""
    from codeinterp.api.server import run_server

    run_server(host=host, port=port)


@app.command("exec")
def exec_(
    file: str = typer.Argument("-", help="Python file to run, or - for standard input"),
    timeout: Optional[float] = typer.Option(None, help="Seconds before the code is interrupted"),
    files_out: Optional[Path] = typer.Option(None, "--files-out", help="Save images and created files here"),
) -> None:
    """Run code in a fresh sandbox. Exit 0 when it ran, 1 when it raised, 124 on timeout or kill."""
    from codeinterp.sandbox.cli_exec import run_exec

    raise typer.Exit(run_exec(file, timeout=timeout, files_out=files_out))


@app.command()
def doctor() -> None:
    """Print which isolation features this host gives and the sandbox's package versions."""
    from codeinterp.sandbox.doctor import run_doctor

    raise typer.Exit(run_doctor())


@keys_app.command("create")
def keys_create(project: str = typer.Option("default", help="Project the key belongs to")) -> None:
    """Create a key and print it (it is shown only once)."""
    from codeinterp.cli.keys import create_key

    create_key(project)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (their ids, projects and prefixes; never the keys)."""
    from codeinterp.cli.keys import list_keys

    list_keys()


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id, as `keys list` shows it")) -> None:
    """Revoke a key."""
    from codeinterp.cli.keys import revoke_key

    raise typer.Exit(revoke_key(key_id))


@app.command()
def usage(days: int = typer.Option(30, help="How many days back")) -> None:
    """Print code interpreter sessions per project and day."""
    from codeinterp.cli.usage import print_usage

    print_usage(days)


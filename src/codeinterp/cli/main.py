"""The `codeinterp` command: serve | exec | doctor | keys | usage | packages | sandbox-host.

Each command is thin: it parses arguments and calls the module that owns the work.
"""

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="codeinterp: a self-hosted Code Interpreter")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (they belong to projects).")
app.add_typer(keys_app, name="keys")
packages_app = typer.Typer(no_args_is_help=True, help="Packages in the sandbox's environment.")
app.add_typer(packages_app, name="packages")


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


@packages_app.command("add")
def packages_add(requirements: list[str] = typer.Argument(..., help="NAME or NAME==VERSION, as pip takes them")) -> None:
    """Install into the sandbox's environment; new sessions see it, live ones keep theirs."""
    from codeinterp.cli.packages import add_packages

    raise typer.Exit(add_packages(requirements))


@packages_app.command("remove")
def packages_remove(names: list[str] = typer.Argument(..., help="Names of packages an operator added")) -> None:
    """Uninstall packages an operator added (the stack's own stay)."""
    from codeinterp.cli.packages import remove_packages

    raise typer.Exit(remove_packages(names))


@packages_app.command("list")
def packages_list(all_: bool = typer.Option(False, "--all", help="Also the stack's own packages")) -> None:
    """List the packages an operator added to the sandbox's environment (with --all, every package)."""
    from codeinterp.cli.packages import list_packages

    list_packages(all_)


@packages_app.command("download")
def packages_download(requirements: list[str] = typer.Argument(..., help="NAME or NAME==VERSION, as pip takes them")) -> None:
    """Fill the wheelhouse (CODEINTERP_SANDBOX_WHEELHOUSE) that `pip install` in a session installs from."""
    from codeinterp.cli.packages import download_packages

    raise typer.Exit(download_packages(requirements))


@app.command("sandbox-host")
def sandbox_host(
    listen: str = typer.Option("127.0.0.1:8100", help="HOST:PORT to listen on"),
) -> None:
    """Serve this machine's sandboxes to API servers (the `remote` backend) over HTTP; requires
    CODEINTERP_SANDBOX_HOST_SECRET."""
    from codeinterp.cli.sandbox_host import run_sandbox_host

    raise typer.Exit(run_sandbox_host(listen))

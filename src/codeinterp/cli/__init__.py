"""The `codeinterp` command (see `main`); `app` is its entry point."""

from codeinterp.cli.main import app

__all__ = ["app"]

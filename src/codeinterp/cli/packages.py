"""`codeinterp packages add | remove | list | download`: the sandbox's environment at run time (the work is
in codeinterp.sandbox.packages)."""

import sys

from codeinterp.config import get_settings
from codeinterp.sandbox import packages


def add_packages(requirements: list[str]) -> int:
    settings = get_settings()
    status = packages.add(settings, requirements)
    if status == 0:
        print(f"Added {' '.join(requirements)}: new sandbox sessions import it; live sessions keep what they have.")
    else:
        print("pip failed; the sandbox's environment is as it was (the stack's versions are held by "
              "requirements.lock: a package that needs others cannot be added).", file=sys.stderr)
    return status


def remove_packages(names: list[str]) -> int:
    status, refused = packages.remove(get_settings(), names)
    if refused:
        print(f"Not removed (part of the sandbox's stack, sandbox/requirements.lock): {' '.join(refused)}",
              file=sys.stderr)
    elif status == 0:
        print(f"Removed {' '.join(names)}: new sandbox sessions no longer see it.")
    return status


def list_packages(everything: bool) -> None:
    rows = [row for row in packages.installed(get_settings()) if everything or row[2]]
    if not rows:
        print("No packages added to the sandbox's stack (`codeinterp packages list --all` lists the stack).")
    for name, version, added in rows:
        print(f"{name:<32} {version:<16} {'added' if added else 'stack'}")


def download_packages(requirements: list[str]) -> int:
    try:
        status = packages.download(get_settings(), requirements)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if status == 0:
        print(f"Downloaded {' '.join(requirements)} into {get_settings().sandbox_wheelhouse}: "
              "`pip install` in a session installs them from there.")
    return status

"""Packages in the sandbox's environment at run time (`codeinterp packages add | remove | list`),
and the wheelhouse sessions `pip install` from (`codeinterp packages download`).

pip installs into the sandbox's environment, held to the versions of requirements.lock so that
an added package cannot move the stack under it; its progress goes to the terminal. Each change
writes a new generation into the environment: a running server's bwrap backend sees it and
starts a new warm parent for new sessions, while live sessions keep the interpreter they have.
"""

import json
import re
import subprocess
import time
from pathlib import Path

from codeinterp.config import Settings

HERE = Path(__file__).parent
LOCK = HERE / "requirements.lock"
GENERATION_FILE = "codeinterp-generation"  # in the sandbox's environment


def generation(sandbox_env: Path) -> str:
    """The environment's generation: changes whenever packages are added or removed."""
    try:
        return (sandbox_env / GENERATION_FILE).read_text().strip()
    except OSError:
        return ""


def bump_generation(sandbox_env: Path) -> None:
    path = sandbox_env / GENERATION_FILE
    path.write_text(f"{time.time_ns()}\n")
    path.chmod(0o644)


def normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_names() -> set[str]:
    """The stack's own packages (requirements.lock, and spaCy's model that setup bakes in), which
    `remove` leaves alone."""
    names = {normal_name("en_core_web_sm")}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(normal_name(match.group(1)))
    return names


def _pip(settings: Settings, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    python = settings.sandbox_env / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"The sandbox's Python environment is missing ({python}); run scripts/setup.sh.")
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=capture, text=True)


def add(settings: Settings, requirements: list[str]) -> int:
    """pip's exit status; the generation moves on success."""
    done = _pip(settings, "install", "-c", str(LOCK), *requirements)
    if done.returncode == 0:
        _readable(settings.sandbox_env)
        bump_generation(settings.sandbox_env)
    return done.returncode


def remove(settings: Settings, names: list[str]) -> tuple[int, list[str]]:
    """(pip's exit status, the names refused because the stack itself needs them)."""
    stack = locked_names()
    refused = [name for name in names if normal_name(name) in stack]
    wanted = [name for name in names if normal_name(name) not in stack]
    if not wanted:
        return (1 if refused else 0), refused
    done = _pip(settings, "uninstall", "-y", *wanted)
    if done.returncode == 0:
        bump_generation(settings.sandbox_env)
    return done.returncode, refused


def installed(settings: Settings) -> list[tuple[str, str, bool]]:
    """(name, version, added by an operator rather than part of the stack), by name."""
    out = _pip(settings, "list", "--format", "json", capture=True).stdout
    stack = locked_names() | {"pip", "setuptools", "wheel"}
    return sorted((p["name"], p["version"], normal_name(p["name"]) not in stack) for p in json.loads(out or "[]"))


def download(settings: Settings, requirements: list[str]) -> int:
    """Fills the wheelhouse (CODEINTERP_SANDBOX_WHEELHOUSE) with wheels for `requirements` and what
    they need beyond the stack, for `pip install` inside sessions; pip's exit status."""
    wheelhouse = settings.sandbox_wheelhouse
    if wheelhouse is None:
        raise ValueError("Set CODEINTERP_SANDBOX_WHEELHOUSE to the directory sessions install wheels from.")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    done = _pip(settings, "download", "--only-binary", ":all:", "-c", str(LOCK), "-d", str(wheelhouse),
                *requirements)
    _readable(wheelhouse)
    return done.returncode


def _readable(sandbox_env: Path) -> None:
    """Sessions run as uids of their own: what pip wrote must be readable by all."""
    subprocess.run(["chmod", "-R", "a+rX", str(sandbox_env)], check=False)

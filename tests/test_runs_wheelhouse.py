"""`pip install` inside a session, through a run (scripted model, real server and sandbox): from the
operator's wheelhouse (CODEINTERP_SANDBOX_WHEELHOUSE) only, never the network, into a layer of the
session's own; a package not in the wheelhouse fails fast with pip's message."""

import base64
import hashlib
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.test_runs import ask, logs_of, make_assistant, python

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NAME = "codeinterp_wheel_demo"


def build_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, made here so that the test needs no package index."""
    dist = f"{NAME}-1.0.dist-info"
    files = {f"{NAME}.py": b"ANSWER = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: 1.0\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items()) + f"{dist}/RECORD,,\n"
    wheel = directory / f"{NAME}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in {**files, f"{dist}/RECORD": record.encode()}.items():
            archive.writestr(path, data)
    return wheel


def server_env() -> dict:
    wheelhouse = Path(tempfile.mkdtemp(prefix="codeinterp-wheelhouse-"))
    wheelhouse.chmod(0o755)
    build_wheel(wheelhouse).chmod(0o644)
    return {"CODEINTERP_SANDBOX_WHEELHOUSE": str(wheelhouse)}


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def test_pip_install_in_a_session_comes_from_the_wheelhouse_and_stays_in_the_session(client, upstream):
    upstream.script([
        python(f"%pip install -q {NAME}\nimport {NAME}\nprint('answer', {NAME}.ANSWER)"),
        {"text": "Installed."},
        python("import subprocess, sys\n"
               "done = subprocess.run([sys.executable, '-m', 'pip', 'install', 'not-in-the-wheelhouse'],"
               " capture_output=True, text=True, timeout=60)\n"
               "print(done.returncode, 'No matching distribution found' in done.stderr)"),
        {"text": "Not available."},
        python(f"import importlib.util\nprint(importlib.util.find_spec({NAME!r}) is None)"),
        {"text": "A new thread has its own packages."},
    ])
    assistant = make_assistant(client)
    thread, run = ask(client, assistant, "Install the demo package.")
    assert run.status == "completed", run.last_error
    assert "answer 42" in logs_of(client, run)

    _, run = ask(client, assistant, "Install something else.", thread=thread)
    assert run.status == "completed", run.last_error
    assert logs_of(client, run) == "1 True\n"

    _, run = ask(client, assistant, "Is it installed here?")  # a new thread: a new session
    assert run.status == "completed", run.last_error
    assert logs_of(client, run) == "True\n"

"""`codeinterp exec [FILE|-] [--timeout S] [--files-out DIR]`: run code once in a fresh sandbox.

Output is printed as it comes (stdout and results on stdout; stderr, tracebacks and notices on
stderr); images and the files the code created or changed under /mnt/data are saved under DIR.
Exit status: 0 the code ran, 1 it raised (or the kernel crashed), 124 timeout or kill.
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from codeinterp.config import get_settings
from codeinterp.sandbox import create_backend
from codeinterp.sandbox.interface import SandboxSession, read_all
from codeinterp.sandbox.types import ExecutionResult, OutputEvent, SandboxError

EXIT_CODES = {"ok": 0, "error": 1, "crashed": 1, "timeout": 124, "killed": 124}


def _read_code(file: str) -> str:
    if file in ("-", ""):
        return sys.stdin.read()
    return Path(file).read_text()


def _print_event(event: OutputEvent) -> None:
    if event.kind == "stdout":
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif event.kind == "result":
        sys.stdout.write(event.text if event.text.endswith("\n") else event.text + "\n")
        sys.stdout.flush()
    elif event.kind == "image":
        pass  # saved under --files-out; a terminal cannot show it
    else:  # stderr, error (the traceback), notice
        text = event.text
        if event.kind != "stderr" and text and not text.endswith("\n"):
            text += "\n"
        sys.stderr.write(text)
        sys.stderr.flush()


async def _save_outputs(session: SandboxSession, result: ExecutionResult, files_out: Path) -> list[Path]:
    files_out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    images = [o.png for o in result.outputs if o.kind == "image" and o.png]
    for number, png in enumerate(images, 1):
        path = files_out / f"image-{number}.png"
        path.write_bytes(png)
        saved.append(path)
    for change in result.files_changed:
        try:
            data = await read_all(session, change.path)
        except (FileNotFoundError, SandboxError):
            continue
        target = (files_out / change.path).resolve()
        if files_out.resolve() not in target.parents:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        saved.append(target)
    return saved


async def _run(code: str, timeout: float | None, files_out: Path | None, data_dir: Path | None) -> int:
    overrides: dict = {"sandbox_warm_sessions": 0}  # one session, once: nothing to keep warm
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = get_settings().model_copy(update=overrides)
    backend = create_backend(settings)
    try:
        await backend.start()
        session = await backend.create_session()
        result = await session.execute(code, timeout=timeout, on_output=_print_event)
        if result.status == "timeout":
            print(f"[execution interrupted after {timeout if timeout is not None else settings.sandbox_exec_timeout_seconds:g}"
                  " seconds (timeout)]", file=sys.stderr)
        if files_out is not None:
            for path in await _save_outputs(session, result, files_out):
                print(f"[saved {path}]", file=sys.stderr)
        return EXIT_CODES.get(result.status, 1)
    finally:
        await backend.stop()


def run_exec(file: str, timeout: float | None = None, files_out: Path | None = None) -> int:
    try:
        code = _read_code(file)
    except OSError as error:
        print(f"codeinterp exec: cannot read {file}: {error.strerror or error}", file=sys.stderr)
        return 2
    temporary = None
    data_dir = None
    if not os.environ.get("CODEINTERP_DATA_DIR"):
        temporary = tempfile.TemporaryDirectory(prefix="codeinterp-exec-")
        data_dir = Path(temporary.name)
    try:
        return asyncio.run(_run(code, timeout, Path(files_out) if files_out else None, data_dir))
    except SandboxError as error:
        print(f"codeinterp exec: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if temporary is not None:
            temporary.cleanup()

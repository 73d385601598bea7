"""A real sandbox backend (bubblewrap, cgroups, seccomp) on an event loop of its own, so that
tests can drive it from plain synchronous code."""

import asyncio
import threading
from pathlib import Path

import pytest

from codeinterp.config import Settings
from codeinterp.sandbox import create_backend


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SandboxHarness:
    def __init__(self, data_dir: Path, **settings) -> None:
        self.loop = LoopThread()
        self.settings = Settings(data_dir=data_dir, **{"sandbox_warm_sessions": 2, **settings})
        self.backend = create_backend(self.settings)
        self.run(self.backend.start())

    def run(self, coroutine, timeout: float = 120):
        return self.loop.run(coroutine, timeout)

    def session(self, **kwargs):
        return self.run(self.backend.create_session(**kwargs))

    def execute(self, session, code: str, **kwargs):
        return self.run(session.execute(code, **kwargs))

    def close(self) -> None:
        self.run(self.backend.stop())
        self.loop.stop()


def session_group(controller: str, session_id: str) -> Path:
    """The session's group under its manager's group (codeinterp/<manager>/<session>) for a
    controller of cgroup v1, or the one group of cgroup v2."""
    root = Path("/sys/fs/cgroup")
    base = root / controller / "codeinterp" if (root / controller).is_dir() else root / "codeinterp"
    (group,) = base.glob(f"*/{session_id}")
    return group


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    harness = SandboxHarness(tmp_path_factory.mktemp("sandbox"), sandbox_exec_timeout_seconds=30,
                             sandbox_interrupt_grace_seconds=1, sandbox_memory_mb=512)
    yield harness
    harness.close()

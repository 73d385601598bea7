"""Per-session control groups: memory, process count and CPU share (cgroup v1 or v2)."""

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "codeinterp"


def version() -> int | None:
    """2 for the unified hierarchy, 1 for v1 with the controllers we need, None without them."""
    if (ROOT / "cgroup.controllers").exists():
        return 2
    if all((ROOT / c).is_dir() for c in ("memory", "pids", "cpu")):
        return 1
    return None


def usable() -> bool:
    v = version()
    if v == 1:
        return all(os.access(ROOT / c, os.W_OK) for c in ("memory", "pids", "cpu"))
    if v == 2:
        controllers = (ROOT / "cgroup.controllers").read_text().split()
        return {"memory", "pids", "cpu"} <= set(controllers) and os.access(ROOT, os.W_OK)
    return False


class SessionGroup:
    """The control groups of one session: created with limits, joined by its kernel, removed at close."""

    def __init__(self, session_id: str, memory_mb: int, pids: int, cpu_shares: int) -> None:
        self.version = version()
        self.session_id = session_id
        memory = memory_mb * 1024 * 1024
        if self.version == 1:
            self.dirs = [ROOT / c / GROUP / session_id for c in ("memory", "pids", "cpu")]
            settings = {self.dirs[0]: [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)],
                        self.dirs[1]: [("pids.max", pids)],
                        self.dirs[2]: [("cpu.shares", cpu_shares)]}
        else:
            parent = ROOT / GROUP
            if not parent.is_dir():
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            self.dirs = [parent / session_id]
            weight = max(1, min(10000, cpu_shares * 100 // 1024))
            settings = {self.dirs[0]: [("memory.max", memory), ("memory.swap.max", 0), ("pids.max", pids),
                                       ("cpu.weight", weight)]}
        for directory, values in settings.items():
            directory.mkdir(parents=True, exist_ok=True)
            for name, value in values:
                if (directory / name).exists():
                    (directory / name).write_text(str(value))

    def add(self, pid: int) -> None:
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.dirs[0] / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def out_of_memory(self) -> bool:
        """Whether the memory limit killed a process of this session."""
        try:
            if self.version == 1:
                control = dict(line.split() for line in (self.dirs[0] / "memory.oom_control").read_text().splitlines())
                return int(control.get("oom_kill", 0)) > 0 or int((self.dirs[0] / "memory.failcnt").read_text()) > 0
            events = dict(line.split() for line in (self.dirs[0] / "memory.events").read_text().splitlines())
            return int(events.get("oom_kill", 0)) > 0
        except (FileNotFoundError, ValueError):
            return False

    def reset_memory_events(self) -> None:
        if self.version == 1:
            try:
                (self.dirs[0] / "memory.failcnt").write_text("0")
            except OSError:
                pass

    def kill(self) -> None:
        if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
            (self.dirs[0] / "cgroup.kill").write_text("1")
            return
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def busy(self) -> bool:
        """Whether any process of the session is still there (exited ones not yet reaped included)."""
        pids_dir = self.dirs[1] if self.version == 1 else self.dirs[0]
        try:
            return int((pids_dir / "pids.current").read_text()) > 0
        except (FileNotFoundError, ValueError):
            return bool(self.pids())

    def empty_out(self, timeout: float = 5.0) -> None:
        """Kill every process of the session and wait until they are gone, so that a new kernel
        gets the whole process and memory budget."""
        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            self.kill()
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the groups (waiting briefly for the processes to go)."""
        deadline = time.monotonic() + 2.0
        for directory in self.dirs:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill()
                    time.sleep(0.01)

"""Control groups: one per sandbox manager, bounding the memory of all its sessions together,
and one per session below it: memory, process count and CPU share (cgroup v1 or v2).

    codeinterp/<manager>/<session>    (v1: under each of memory, pids and cpu)

<manager> is `<pid>-<random>`: a manager removes its groups when it stops, and at start the groups
of managers whose process is gone (a server that was killed).
"""

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "codeinterp"
CONTROLLERS = ("memory", "pids", "cpu")


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


def _apply(settings: dict[Path, list[tuple[str, int]]]) -> None:
    for directory, values in settings.items():
        directory.mkdir(parents=True, exist_ok=True)
        for name, value in values:
            if (directory / name).exists():
                (directory / name).write_text(str(value))


def _enable_controllers(directory: Path) -> None:
    """v2: let the groups below `directory` use the memory, pids and cpu controllers."""
    directory.mkdir(exist_ok=True)
    enabled = (directory / "cgroup.subtree_control").read_text().split()
    if not set(CONTROLLERS) <= set(enabled):
        (directory / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))


def _manager_dirs() -> list[Path]:
    """Every manager's group (and, from older versions, any other group) under codeinterp/."""
    v = version()
    tops = [ROOT / c / GROUP for c in CONTROLLERS] if v == 1 else [ROOT / GROUP]
    found = []
    for top in tops:
        with contextlib.suppress(FileNotFoundError):
            found += [p for p in top.iterdir() if p.is_dir()]
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(directory: Path) -> None:
    """Kill every process in a group and the groups below it, and remove them, bottom-up (a group
    another process removes meanwhile is simply gone)."""
    try:
        children = [p for p in directory.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return
    for child in children:
        _remove_tree(child)
    deadline = time.monotonic() + 2.0
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            _kill_all(directory)
            time.sleep(0.01)


def _kill_all(directory: Path) -> None:
    """SIGKILL the processes of one group (of a manager that is gone: none of ours)."""
    if (directory / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            (directory / "cgroup.kill").write_text("1")
        return
    try:
        pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return
    relative = directory.relative_to(ROOT)
    member = "/" + (relative.relative_to(relative.parts[0]) if version() == 1 else relative).as_posix()
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if any(line.endswith(":" + member) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(pidfd)


def remove_stale_managers() -> int:
    """Remove the groups of managers whose process is gone (`<pid>-<random>` with a dead pid), with
    what is left in and below them; groups not named so (older versions') only when empty.
    Returns how many went."""
    removed = 0
    for directory in _manager_dirs():
        pid, dash, _ = directory.name.partition("-")
        if dash and pid.isdigit():
            if not _pid_alive(int(pid)):
                _remove_tree(directory)
        else:
            with contextlib.suppress(OSError):
                directory.rmdir()
        removed += not directory.exists()
    return removed


class ParentGroup:
    """The group of one sandbox manager: every session's group lies below it, and together they
    may use at most `memory_mb` (the kernel reclaims, then kills within the sessions, past it)."""

    def __init__(self, memory_mb: int) -> None:
        self.version = version()
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        memory = memory_mb * 1024 * 1024
        self.memory_bytes = memory
        if self.version == 1:
            self.dirs = [ROOT / c / GROUP / self.name for c in CONTROLLERS]
            _apply({self.dirs[0]: [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)],
                    self.dirs[1]: [], self.dirs[2]: []})
        else:
            _enable_controllers(ROOT / GROUP)
            self.dirs = [ROOT / GROUP / self.name]
            _apply({self.dirs[0]: [("memory.max", memory), ("memory.swap.max", 0)]})
            _enable_controllers(self.dirs[0])

    def remove(self) -> None:
        """Remove the manager's groups and any session group left below them, bottom-up."""
        for directory in self.dirs:
            with contextlib.suppress(OSError):
                _remove_tree(directory)


class SessionGroup:
    """The control groups of one session: created with limits, joined by its kernel, removed at close."""

    def __init__(self, parent: ParentGroup, session_id: str, memory_mb: int, pids: int, cpu_shares: int) -> None:
        self.version = parent.version
        self.session_id = session_id
        memory = memory_mb * 1024 * 1024
        self.dirs = [directory / session_id for directory in parent.dirs]
        if self.version == 1:
            _apply({self.dirs[0]: [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)],
                    self.dirs[1]: [("pids.max", pids)],
                    self.dirs[2]: [("cpu.shares", cpu_shares)]})
        else:
            weight = max(1, min(10000, cpu_shares * 100 // 1024))
            _apply({self.dirs[0]: [("memory.max", memory), ("memory.swap.max", 0), ("pids.max", pids),
                                   ("cpu.weight", weight)]})

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
        """SIGKILL every process of the session, and nothing else: a PID read from the group may
        belong to another process by the time it is signalled, so each is signalled through a pidfd
        opened first and checked to be in this group."""
        if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
            (self.dirs[0] / "cgroup.kill").write_text("1")
            return
        member = f"/{GROUP}/{self.dirs[0].parent.name}/{self.session_id}"
        for pid in self.pids():
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if any(line.endswith(member) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)

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

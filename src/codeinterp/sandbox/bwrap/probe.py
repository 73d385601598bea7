"""What this host lacks for isolation, and how much memory
all sessions together may use."""

import os
import shutil

from codeinterp.config import Settings
from codeinterp.sandbox.bwrap import cgroups


def missing_isolation(settings: Settings) -> list[str]:
    """The features this host lacks to isolate sessions (empty when sessions are isolated); the
    doctor (`codeinterp doctor`) looks at each in more detail."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (to build namespaces, mounts and cgroups for each session)")
    if not shutil.which("bwrap"):
        missing.append("bubblewrap (bwrap)")
    if not cgroups.usable():
        missing.append("writable cgroups with memory, pids and cpu controllers")
    return missing


def total_memory_mb(settings: Settings) -> int:
    """The memory all sandboxes together may use: the setting, or three quarters of the host's."""
    if settings.sandbox_total_memory_mb:
        return settings.sandbox_total_memory_mb
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4 // (1024 * 1024)

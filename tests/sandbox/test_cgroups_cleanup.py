"""Control groups do not pile up: a backend removes, at start, the groups of managers whose
process is gone, and at stop its own."""

import subprocess
import sys
from pathlib import Path

import pytest

from codeinterp.sandbox.bwrap import cgroups
from tests.sandbox.conftest import SandboxHarness

pytestmark = pytest.mark.skipif(not cgroups.usable(), reason="needs writable cgroups")


def _group_tops() -> list[Path]:
    if cgroups.version() == 1:
        return [cgroups.ROOT / c / cgroups.GROUP for c in cgroups.CONTROLLERS]
    return [cgroups.ROOT / cgroups.GROUP]


def test_stale_manager_groups_go_at_start_and_own_groups_at_stop(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid whose process is gone
    stale = [top / f"{dead.pid}-deadbeef" for top in _group_tops()]
    for group in stale:
        (group / "sbx_left_behind").mkdir(parents=True)
    harness = SandboxHarness(tmp_path, sandbox_warm_sessions=0)
    try:
        assert not any(group.exists() for group in stale)
        own = harness.backend.parent_group.dirs
        session = harness.session()
        assert harness.execute(session, "1 + 1").text == "2\n"
        assert all((directory / session.id).is_dir() for directory in own)
    finally:
        harness.close()
    assert not any(directory.exists() for directory in own)


def test_a_group_removed_meanwhile_by_another_server_is_simply_gone(tmp_path):
    """Two servers starting at once both clean up stale groups: one may remove a group while the
    other walks it (this raised FileNotFoundError and stopped a server's start)."""
    vanished = tmp_path / "1-gone"
    cgroups._remove_tree(vanished)  # no error
    assert not vanished.exists()

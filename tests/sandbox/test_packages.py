"""`codeinterp packages add | list | remove` through the CLI, with a server's backend running: new
sessions see the change (a new warm parent), a live session keeps its interpreter and state.
Adds a small pure-Python package from PyPI to the real sandbox environment and removes it again."""

import time

import pytest

from tests.sandbox.conftest import SandboxHarness
from tests.sandbox.test_cli import codeinterp

PACKAGE = "humanize"  # small, pure Python, not in the stack
IMPORT = f"import {PACKAGE}\nprint({PACKAGE}.intcomma(1234567))"

pytestmark = pytest.mark.slow


def imports_in_a_new_session(harness: SandboxHarness) -> bool:
    session = harness.session()
    try:
        return harness.execute(session, IMPORT).text == "1,234,567\n"
    finally:
        harness.run(session.close())


def wait_for_new_sessions(harness: SandboxHarness, importable: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while imports_in_a_new_session(harness) != importable:
        assert time.monotonic() < deadline, f"new sessions still {'cannot' if importable else 'can'} import"
        time.sleep(1)


def test_packages_add_list_remove_reach_new_sessions_and_spare_live_ones(tmp_path):
    harness = SandboxHarness(tmp_path / "server", sandbox_warm_sessions=1)
    try:
        live = harness.session()
        assert harness.execute(live, "state = 'kept'\nimport numpy").status == "ok"
        assert not imports_in_a_new_session(harness)

        added = codeinterp("packages", "add", PACKAGE, tmp_path=tmp_path, timeout=300)
        assert added.returncode == 0, added.stdout + added.stderr
        assert "new sandbox sessions import it" in added.stdout
        listed = codeinterp("packages", "list", tmp_path=tmp_path)
        assert any(line.split()[0] == PACKAGE and line.split()[-1] == "added" for line in listed.stdout.splitlines())
        assert "core-web-sm" not in listed.stdout.replace("_", "-")  # spaCy's model, baked in by setup: the stack's
        wait_for_new_sessions(harness, importable=True)
        assert harness.execute(live, "state").text == "'kept'\n"  # the live session kept its kernel

        refused = codeinterp("packages", "remove", "numpy", tmp_path=tmp_path)
        assert refused.returncode == 1 and "part of the sandbox's stack" in refused.stderr
        removed = codeinterp("packages", "remove", PACKAGE, tmp_path=tmp_path, timeout=120)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert PACKAGE not in codeinterp("packages", "list", tmp_path=tmp_path).stdout
        wait_for_new_sessions(harness, importable=False)
        assert harness.execute(live, "state").text == "'kept'\n"
        harness.run(live.close())
    finally:
        codeinterp("packages", "remove", PACKAGE, tmp_path=tmp_path)
        harness.close()


def test_packages_download_fills_the_wheelhouse(tmp_path):
    env_dir = tmp_path / "wheels"
    done = codeinterp("packages", "download", PACKAGE, tmp_path=tmp_path, timeout=300,
                      env={"CODEINTERP_SANDBOX_WHEELHOUSE": str(env_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [wheel.name.split("-")[0] for wheel in env_dir.glob("*.whl")] == [PACKAGE]
    unset = codeinterp("packages", "download", PACKAGE, tmp_path=tmp_path)
    assert unset.returncode == 2 and "CODEINTERP_SANDBOX_WHEELHOUSE" in unset.stderr

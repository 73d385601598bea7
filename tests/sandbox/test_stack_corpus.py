"""A tiny part of benchmarks/stack_corpus.py: one library's own test module (networkx's, as its
wheel ships it in the sandbox's environment) runs in a real sandbox with the same per-test outcomes
as on the host with the same interpreter."""

import importlib.util
from pathlib import Path

import pytest

from tests.sandbox.conftest import SandboxHarness

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stack_corpus.py"
MODULE = "networkx.algorithms.shortest_paths.tests.test_generic"


def load_corpus():
    spec = importlib.util.spec_from_file_location("stack_corpus", SCRIPT)
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    return corpus


def test_a_libraries_own_tests_have_the_same_outcomes_in_the_sandbox_as_on_the_host(tmp_path):
    corpus = load_corpus()
    harness = SandboxHarness(tmp_path, sandbox_warm_sessions=0, sandbox_exec_timeout_seconds=300)
    try:
        inside = harness.run(corpus.run_in_sandbox(harness.backend, MODULE, ()), timeout=320)
    finally:
        harness.close()
    on_host = corpus.run_on_host(harness.settings.sandbox_env / "bin" / "python", MODULE, ())

    assert inside.exit_status == on_host.exit_status == 0, (inside.tail, on_host.tail)
    assert len(inside.outcomes) > 10
    assert {outcome for outcome, _ in inside.outcomes.values()} == {"passed"}
    assert corpus.compare(MODULE, on_host, inside) == []

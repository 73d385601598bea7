"""The `kubernetes` backend against a fake Kubernetes API (tests/helpers/fake_kubernetes.py) that
speaks agent-sandbox's SandboxClaim, with the sandbox pod's process for real: a
`codeinterp sandbox-host` on loopback, where the fake's ready claims point.

A real cluster (kind + agent-sandbox + the files in deploy/kubernetes/) is not reachable here;
see deploy/kubernetes/README.md for the walkthrough that runs a session on one."""

import os

import pytest

pytest.importorskip("kubernetes_asyncio")

from codeinterp.sandbox.types import SandboxError, SessionClosed  # noqa: E402
from tests.helpers.fake_kubernetes import FakeKubernetes  # noqa: E402
from tests.helpers.sandbox_hosts import SECRET, start_hosts  # noqa: E402
from tests.sandbox.conftest import SandboxHarness  # noqa: E402
from tests.test_runs import wait_for  # noqa: E402

POOLS = {f"codeinterp-sandbox-{tier}" for tier in ("1g", "4g", "16g", "64g")}
NAMESPACE = "codeinterp"


@pytest.fixture(scope="module")
def pod(tmp_path_factory):
    """The sandbox pods' process, for real (every claimed 'pod' is this one on loopback)."""
    (host,) = start_hosts(tmp_path_factory, count=1)
    yield host
    host.stop()


@pytest.fixture
def fake():
    fake = FakeKubernetes(POOLS, pod_ips=["127.0.0.1"]).start()
    yield fake
    fake.stop()


def harness_for(fake, pod, tmp_path, **settings) -> SandboxHarness:
    kubeconfig = tmp_path / "kubeconfig"
    fake.write_kubeconfig(kubeconfig, NAMESPACE)
    return SandboxHarness(tmp_path / "data", sandbox_warm_sessions=0, sandbox_backend="kubernetes",
                          sandbox_host_secret=SECRET, sandbox_k8s_kubeconfig=kubeconfig,
                          sandbox_k8s_namespace=NAMESPACE, sandbox_k8s_port=pod.port,
                          sandbox_k8s_replica="api-0", **settings)


def test_a_session_is_a_claim_on_its_tier_pool_and_ends_with_it(fake, pod, tmp_path):
    harness = harness_for(fake, pod, tmp_path)
    try:
        harness.run(harness.backend.check())  # the API answers
        session = harness.session()
        (claim,) = fake.created
        assert claim["spec"]["warmPoolRef"] == {"name": "codeinterp-sandbox-1g"}
        assert claim["spec"]["lifecycle"]["shutdownPolicy"] == "Delete" and claim["spec"]["lifecycle"]["shutdownTime"]
        assert claim["metadata"]["labels"]["codeinterp.io/replica"] == "api-0"
        assert harness.execute(session, "x = 6 * 7\nx").text == "42\n"
        harness.run(session.put_file("in.txt", b"data"))
        assert [f.path for f in harness.run(session.list_files())] == ["in.txt"]
        big = harness.session(limits=type(session.limits)(**{**vars(session.limits), "memory_mb": 3000}))
        assert fake.created[-1]["spec"]["warmPoolRef"] == {"name": "codeinterp-sandbox-4g"}
        harness.run(session.close())
        harness.run(big.close())
        wait_for(lambda: not fake.claims)
        assert sorted(fake.deleted) == sorted(c["metadata"]["name"] for c in fake.created) and not fake.claims
        with pytest.raises(SessionClosed):
            harness.execute(session, "x")
    finally:
        harness.close()


def test_a_watch_whose_version_expired_starts_again(fake, pod, tmp_path):
    fake.gone_once = True
    harness = harness_for(fake, pod, tmp_path)
    try:
        session = harness.session()
        assert harness.execute(session, "1 + 1").text == "2\n"
    finally:
        harness.close()
    assert not fake.claims  # stopping the backend deleted its claims


def test_a_pod_that_never_becomes_ready_fails_the_session_and_its_claim_goes(fake, pod, tmp_path):
    fake.never_ready = True
    harness = harness_for(fake, pod, tmp_path, sandbox_k8s_ready_timeout_seconds=1)
    try:
        with pytest.raises(SandboxError, match="not ready within"):
            harness.session()
        assert [c["metadata"]["name"] for c in fake.created] == fake.deleted and not fake.claims
    finally:
        harness.close()


def test_claims_left_by_this_replica_are_deleted_at_start(fake, pod, tmp_path):
    labels = {"app.kubernetes.io/managed-by": "codeinterp", "codeinterp.io/memory-tier": "1g"}
    fake.add_claim(NAMESPACE, {"metadata": {"name": "left-behind", "labels": {**labels, "codeinterp.io/replica": "api-0"}},
                               "spec": {"warmPoolRef": {"name": "codeinterp-sandbox-1g"}}})
    fake.add_claim(NAMESPACE, {"metadata": {"name": "another-replicas", "labels": {**labels, "codeinterp.io/replica": "api-1"}},
                               "spec": {"warmPoolRef": {"name": "codeinterp-sandbox-1g"}}})
    harness = harness_for(fake, pod, tmp_path)
    try:
        session = harness.session()  # waits for the clean-up
        assert fake.deleted == ["left-behind"] and (NAMESPACE, "another-replicas") in fake.claims
        harness.run(session.close())
    finally:
        harness.close()


def test_a_pod_that_dies_mid_cell_ends_the_cell_and_its_claim(fake, tmp_path_factory, tmp_path):
    (doomed,) = start_hosts(tmp_path_factory, count=1)
    harness = harness_for(fake, doomed, tmp_path)
    try:
        session = harness.session()

        def on_output(event):
            if "running" in event.text:
                doomed.kill()

        result = harness.execute(session, "import time\nprint('running', flush=True)\ntime.sleep(60)",
                                 on_output=on_output)
        assert result.status == "crashed" and result.state_lost and "state" in result.outputs[-1].text
        assert harness.backend.get(session.id) is None
        wait_for(lambda: not fake.claims)
        assert fake.deleted == [fake.created[0]["metadata"]["name"]] and not fake.claims
    finally:
        harness.close()
        doomed.stop()


@pytest.mark.kubernetes_cluster
@pytest.mark.skipif(not os.environ.get("CODEINTERP_TEST_KUBECONFIG"),
                    reason="needs a real cluster: see deploy/kubernetes/README.md, 'The real-cluster test'")
def test_a_session_on_a_real_cluster(tmp_path):
    """One session on a real cluster with agent-sandbox and deploy/kubernetes/ applied: claim, run
    code, read a file, close (and the claim goes)."""
    harness = SandboxHarness(tmp_path, sandbox_warm_sessions=0, sandbox_backend="kubernetes",
                             sandbox_k8s_kubeconfig=os.environ["CODEINTERP_TEST_KUBECONFIG"],
                             sandbox_k8s_namespace=os.environ.get("CODEINTERP_TEST_K8S_NAMESPACE", "codeinterp"),
                             sandbox_host_secret=os.environ["CODEINTERP_TEST_SANDBOX_HOST_SECRET"],
                             sandbox_k8s_replica="real-cluster-test", sandbox_k8s_ready_timeout_seconds=300)
    try:
        session = harness.session()
        result = harness.execute(session, "import pandas as pd\nopen('out.txt', 'w').write('ok')\n6 * 7")
        assert result.status == "ok" and result.text == "42\n", result.outputs
        assert [f.path for f in result.files_changed] == ["out.txt"]
        harness.run(session.close())
        assert harness.backend.get(session.id) is None
    finally:
        harness.close()

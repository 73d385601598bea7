"""The `kubernetes` backend: each session is one sandbox pod claimed from a warm pool
(kubernetes-sigs/agent-sandbox), running `codeinterp sandbox-host`; the server talks to the
pod's IP as the `remote` backend talks to a host (same secret, same wire, same loss handling).

    CODEINTERP_SANDBOX_BACKEND=kubernetes
    CODEINTERP_SANDBOX_HOST_SECRET=...      (the pods' secret, from a Kubernetes Secret)
    CODEINTERP_SANDBOX_K8S_NAMESPACE=...    (and the other CODEINTERP_SANDBOX_K8S_* settings)

A session's claim is deleted when the session closes or its pod is lost; at start, claims this
replica left behind (it crashed) are deleted; each claim's shutdownTime ends any that slip through.
"""

import asyncio
import logging

from codeinterp.config import Settings
from codeinterp.sandbox.kubernetes.claims import Claims, memory_tier
from codeinterp.sandbox.limits import limits_from
from codeinterp.sandbox.remote.backend import RemoteBackend
from codeinterp.sandbox.remote.session import RemoteSession
from codeinterp.sandbox.types import Limits, SandboxError

log = logging.getLogger(__name__)


class KubernetesBackend(RemoteBackend):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.claims = Claims(settings)
        self._claim_of: dict[str, str] = {}  # session id -> its claim's name
        self._ending: set[asyncio.Task] = set()

    async def start(self) -> None:
        if not self.settings.sandbox_host_secret:
            raise SandboxError("The kubernetes sandbox backend needs CODEINTERP_SANDBOX_HOST_SECRET, the pods' secret.")
        await self.claims.connect()
        self._first_round = asyncio.create_task(self._clean_up_leftovers())
        self._watcher = asyncio.create_task(self._watch())

    async def _clean_up_leftovers(self) -> None:
        try:
            if names := await self.claims.delete_leftovers():
                log.warning("deleted %d sandbox claims left by this replica before it restarted", len(names))
        except Exception:  # noqa: BLE001 - their shutdownTime ends them anyway
            log.exception("deleting the sandbox claims left by this replica failed")

    async def check(self) -> None:
        """The Kubernetes API answers (each pod is checked with its session)."""
        try:
            await self.claims.list_some()
        except Exception as error:  # noqa: BLE001 - whatever it is, the operator reads it
            raise SandboxError(f"The Kubernetes API does not answer: {error}") from error

    async def stop(self) -> None:
        await super().stop()
        if self._ending:
            await asyncio.wait(self._ending, timeout=30)
        await self.claims.close()

    async def create_session(self, limits: Limits | None = None,
                             expiry_seconds: float | None = None) -> RemoteSession:
        expiry = await self._ready(expiry_seconds)
        tier = memory_tier((limits or limits_from(self.settings)).memory_mb)
        claim = await self.claims.create(tier)
        name = claim["metadata"]["name"]
        host = None
        try:
            ip = await self.claims.wait_ready(claim)
            scheme = "https" if self.settings.sandbox_tls_ca is not None else "http"
            address = f"[{ip}]" if ":" in ip else ip
            host = self.make_host(f"{scheme}://{address}:{self.settings.sandbox_k8s_port}")
            self.hosts.append(host)
            session = await self.open_session(host, limits, expiry)
        except BaseException:
            if host is not None:
                self._drop_host(host)
            await asyncio.shield(self.claims.delete(name))
            raise
        self._claim_of[session.id] = name
        return session

    def forget(self, session: RemoteSession) -> None:
        """The session closed or was lost: its pod and claim end too."""
        super().forget(session)
        name = self._claim_of.pop(session.id, None)
        if name is not None:
            task = asyncio.ensure_future(self._end(name, session.host))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def _end(self, name: str, host) -> None:
        try:
            await self.claims.delete(name)
        except Exception:  # noqa: BLE001 - its shutdownTime ends it anyway
            log.exception("deleting sandbox claim %s failed", name)
        self._drop_host(host)

    def _drop_host(self, host) -> None:
        if host in self.hosts:
            self.hosts.remove(host)
            task = asyncio.ensure_future(host.client.aclose())
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

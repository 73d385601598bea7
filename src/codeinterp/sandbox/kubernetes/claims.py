"""SandboxClaims (kubernetes-sigs/agent-sandbox, extensions.agents.x-k8s.io/v1beta1) through
kubernetes-asyncio: a claim takes a ready pod from a SandboxWarmPool; its status names the pod's
IPs once Ready; deleting it ends the pod. `lifecycle.shutdownTime` ends a claim that its server
forgot (crashed, say)."""

import asyncio
import datetime
import json
import logging
import secrets

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from codeinterp.config import Settings
from codeinterp.sandbox.types import SandboxError

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "extensions.agents.x-k8s.io", "v1beta1", "sandboxclaims"
MANAGED_BY = "app.kubernetes.io/managed-by"
REPLICA = "codeinterp.io/replica"
TIER = "codeinterp.io/memory-tier"
TIERS_MB = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}  # the Containers API's memory_limit values


class ClaimFailed(SandboxError):
    """A claim did not become ready (timed out, deleted, or failed)."""


def memory_tier(memory_mb: int) -> str:
    """The smallest tier that holds `memory_mb`."""
    for tier, tier_mb in TIERS_MB.items():
        if memory_mb <= tier_mb:
            return tier
    raise SandboxError(f"No sandbox pool holds {memory_mb} MB (the largest tier is 64g).")


def ready_ip(claim: dict) -> str | None:
    """The pod's first IP once the claim is Ready, else None."""
    status = claim.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    ips = (status.get("sandbox") or {}).get("podIPs") or []
    return ips[0] if ready and ips else None


class Claims:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namespace = settings.sandbox_k8s_namespace
        self.api: client.ApiClient | None = None
        self.objects: client.CustomObjectsApi | None = None

    async def connect(self) -> None:
        configuration = client.Configuration()
        if self.settings.sandbox_k8s_kubeconfig is not None:
            await config.load_kube_config(config_file=str(self.settings.sandbox_k8s_kubeconfig),
                                          client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
        self.api = client.ApiClient(configuration)
        self.objects = client.CustomObjectsApi(self.api)

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    def _labels(self, tier: str) -> dict:
        return {MANAGED_BY: "codeinterp", REPLICA: self.settings.sandbox_k8s_replica, TIER: tier}

    async def create(self, tier: str) -> dict:
        """A new claim on the tier's warm pool, ending by itself after the claim lifetime."""
        shutdown = (datetime.datetime.now(datetime.timezone.utc)
                    + datetime.timedelta(seconds=self.settings.sandbox_k8s_claim_lifetime_seconds))
        body = {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxClaim",
            "metadata": {"name": f"codeinterp-{secrets.token_hex(6)}", "labels": self._labels(tier)},
            "spec": {"warmPoolRef": {"name": f"{self.settings.sandbox_k8s_pool_prefix}-{tier}"},
                     "lifecycle": {"shutdownTime": shutdown.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "shutdownPolicy": "Delete"}},
        }
        return await self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    async def wait_ready(self, claim: dict) -> str:
        """The claimed pod's IP, watching the claim from where its creation left it (one watch, no
        polling; restarted from a fresh read when the server says the version is gone). Raises
        `ClaimFailed` after the ready timeout or if the claim is deleted."""
        name = claim["metadata"]["name"]
        try:
            async with asyncio.timeout(self.settings.sandbox_k8s_ready_timeout_seconds):
                version = claim["metadata"].get("resourceVersion")
                while True:
                    if (ip := ready_ip(claim)) is not None:
                        return ip
                    claim, version = await self._next_change(name, claim, version)
        except TimeoutError:
            raise ClaimFailed(f"The sandbox claim {name} was not ready within "
                              f"{self.settings.sandbox_k8s_ready_timeout_seconds:g} seconds.") from None

    async def _next_change(self, name: str, claim: dict, version: str | None) -> tuple[dict, str | None]:
        """Watch until the claim changes: (the claim as now, its version). A watch that ends or whose
        version is gone (410) restarts from a fresh read."""
        response = await self.objects.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, field_selector=f"metadata.name={name}", watch=True,
            resource_version=version, allow_watch_bookmarks=False, timeout_seconds=60, _preload_content=False)
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "DELETED":
                    raise ClaimFailed(f"The sandbox claim {name} was deleted before it was ready.")
                if kind == "ERROR":
                    log.info("watch of sandbox claim %s restarts: %s", name, obj.get("message"))
                    break
                if kind in ("ADDED", "MODIFIED"):
                    return obj, obj["metadata"].get("resourceVersion")
        finally:
            response.release()
        fresh = await self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        return fresh, fresh["metadata"].get("resourceVersion")

    async def delete(self, name: str) -> None:
        """Delete the claim (the pod goes with it); one already gone is fine."""
        try:
            await self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_some(self) -> None:
        """One claim at most, to see that the API answers."""
        await self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, limit=1)

    async def delete_leftovers(self) -> list[str]:
        """Delete claims this server's replica made before it restarted (their sessions are gone
        with its memory); names deleted."""
        selector = f"{MANAGED_BY}=codeinterp,{REPLICA}={self.settings.sandbox_k8s_replica}"
        listed = await self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                                  label_selector=selector)
        names = [item["metadata"]["name"] for item in listed.get("items", [])]
        for name in names:
            await self.delete(name)
        return names

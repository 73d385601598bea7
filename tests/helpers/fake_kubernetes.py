"""A fake Kubernetes API server speaking agent-sandbox's SandboxClaim resource (create, get,
list with label and field selectors, watch from a resourceVersion, delete), with a scripted
controller standing in for agent-sandbox's: a new claim on a known warm pool becomes Ready after
`ready_after` seconds with `pod_ips`, or never when `never_ready`. Served by uvicorn on loopback
in a thread of its own, so that kubernetes-asyncio runs against it unmodified.

    fake = FakeKubernetes(pools={"codeinterp-sandbox-1g"}, pod_ips=["127.0.0.1"]).start()
    fake.write_kubeconfig(path)   # then CODEINTERP_SANDBOX_K8S_KUBECONFIG=path
"""

import asyncio
import copy
import json
import secrets
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.helpers.server import free_port

PREFIX = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/{namespace}/sandboxclaims"
TOKEN = "fake-token-" + secrets.token_hex(8)


def status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
                         "message": message}, status_code=code)


def matches(claim: dict, label_selector: str | None, field_selector: str | None) -> bool:
    labels = claim["metadata"].get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    for term in filter(None, (field_selector or "").split(",")):
        key, _, value = term.partition("=")
        if key == "metadata.name" and claim["metadata"]["name"] != value:
            return False
    return True


class FakeKubernetes:
    def __init__(self, pools: set[str], pod_ips: list[str], ready_after: float = 0.05) -> None:
        self.pools = pools
        self.pod_ips = pod_ips
        self.ready_after = ready_after
        self.never_ready = False
        self.gone_once = False  # the next watch answers 410 Gone once (its version expired)
        self.claims: dict[tuple[str, str], dict] = {}
        self.created: list[dict] = []  # every claim body received, in order
        self.deleted: list[str] = []
        self.port = free_port()
        self._version = 0
        self._events: list[tuple[int, str, dict]] = []  # (version, type, object)
        self._changed: asyncio.Condition | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path, namespace: str = "codeinterp") -> None:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }))

    def start(self) -> "FakeKubernetes":
        app = Starlette(routes=[Route(PREFIX, self.collection, methods=["GET", "POST"]),
                                Route(PREFIX + "/{name}", self.item, methods=["GET", "DELETE"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Kubernetes API did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def add_claim(self, namespace: str, claim: dict) -> None:
        """A claim that exists before the backend starts (a crashed replica's, say)."""
        claim = copy.deepcopy(claim)
        self._version += 1
        claim["metadata"]["resourceVersion"] = str(self._version)
        self.claims[(namespace, claim["metadata"]["name"])] = claim

    # ---- the API ---------------------------------------------------------------------------

    async def _record(self, kind: str, claim: dict) -> dict:
        if self._changed is None:
            self._changed = asyncio.Condition()
        self._version += 1
        claim["metadata"]["resourceVersion"] = str(self._version)
        self._events.append((self._version, kind, copy.deepcopy(claim)))
        async with self._changed:
            self._changed.notify_all()
        return claim

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def collection(self, request: Request):
        if not self._authorized(request):
            return status(401, "Unauthorized", "Unauthorized")
        namespace = request.path_params["namespace"]
        if request.method == "POST":
            return await self._create(namespace, await request.json())
        query = request.query_params
        if query.get("watch") in ("true", "True", "1"):
            return StreamingResponse(self._watch(namespace, query), media_type="application/json")
        items = [c for (ns, _), c in sorted(self.claims.items()) if ns == namespace
                 and matches(c, query.get("labelSelector"), query.get("fieldSelector"))]
        return JSONResponse({"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaimList",
                             "metadata": {"resourceVersion": str(self._version)}, "items": items})

    async def _create(self, namespace: str, body: dict):
        name = body.get("metadata", {}).get("name")
        pool = body.get("spec", {}).get("warmPoolRef", {}).get("name")
        if body.get("kind") != "SandboxClaim" or not name or not pool:
            return status(422, "Invalid", "kind SandboxClaim, metadata.name and spec.warmPoolRef.name are required")
        if (namespace, name) in self.claims:
            return status(409, "AlreadyExists", f"sandboxclaims {name!r} already exists")
        self.created.append(copy.deepcopy(body))
        claim = {**copy.deepcopy(body), "status": {}}
        claim["metadata"].update(namespace=namespace, uid=secrets.token_hex(8))
        self.claims[(namespace, name)] = claim
        await self._record("ADDED", claim)
        if pool in self.pools and not self.never_ready:
            asyncio.get_running_loop().call_later(self.ready_after,
                                                  lambda: asyncio.ensure_future(self._make_ready(namespace, name)))
        return JSONResponse(claim, status_code=201)

    async def _make_ready(self, namespace: str, name: str) -> None:
        claim = self.claims.get((namespace, name))
        if claim is None:
            return
        claim["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "SandboxReady",
                                           "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                           "sandbox": {"name": name, "podIPs": list(self.pod_ips)}}
        await self._record("MODIFIED", claim)

    async def _watch(self, namespace: str, query):
        if self.gone_once:
            self.gone_once = False
            yield json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                          "message": "too old resource version"}}) + "\n"
            return
        if self._changed is None:
            self._changed = asyncio.Condition()
        seen = int(query.get("resourceVersion") or self._version)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 60)
        while time.monotonic() < deadline:
            for version, kind, claim in self._events:
                if version > seen and claim["metadata"].get("namespace") == namespace and matches(
                        claim, query.get("labelSelector"), query.get("fieldSelector")):
                    seen = version
                    yield json.dumps({"type": kind, "object": claim}) + "\n"
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    return

    async def item(self, request: Request):
        if not self._authorized(request):
            return status(401, "Unauthorized", "Unauthorized")
        key = (request.path_params["namespace"], request.path_params["name"])
        claim = self.claims.get(key)
        if claim is None:
            return status(404, "NotFound", f"sandboxclaims {key[1]!r} not found")
        if request.method == "GET":
            return JSONResponse(claim)
        del self.claims[key]
        self.deleted.append(key[1])
        await self._record("DELETED", claim)
        return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Success"})

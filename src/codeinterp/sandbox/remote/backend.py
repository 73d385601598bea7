"""The `remote` backend: sessions on sandbox hosts (`codeinterp sandbox-host`), spread by load.

    CODEINTERP_SANDBOX_BACKEND=remote
    CODEINTERP_SANDBOX_HOSTS=http://10.0.0.5:8100,http://10.0.0.6:8100
    CODEINTERP_SANDBOX_HOST_SECRET=...   (the hosts' shared secret)

Each host's health and load are read every few seconds. A new session goes to the least loaded
host that answers (the next one when it is full or does not answer) and stays there. A host that
stops answering, or answers as another host (restarted: its sessions went with it), loses its
sessions: they close, and their callers are told their state was lost.
"""

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass, field

import httpx

from codeinterp.config import Settings
from codeinterp.sandbox.interface import SandboxBackend
from codeinterp.sandbox.remote import wire
from codeinterp.sandbox.remote.session import RemoteSession
from codeinterp.sandbox.types import Limits, SandboxError, SessionLimitReached

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 2.0
HEALTH_TIMEOUT = httpx.Timeout(3.0)
# A request's body leaves at once rather than waiting for the ACK of its headers (Nagle's algorithm).
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
CREATE_TIMEOUT = httpx.Timeout(10.0, read=120.0)  # a host's first session waits for its warm parent


class HostUnreachable(SandboxError):
    """A sandbox host did not answer."""


@dataclass(eq=False)
class Host:
    url: str
    client: httpx.AsyncClient
    host_id: str | None = None
    up: bool = False
    sessions: int = 0  # live sessions on the host (all its clients'), as last told
    max_sessions: int = 1
    ours: set[RemoteSession] = field(default_factory=set)

    @property
    def load(self) -> float:
        return self.sessions / max(1, self.max_sessions)


def host_urls(settings: Settings) -> list[str]:
    return [url.strip().rstrip("/") for url in settings.sandbox_hosts.split(",") if url.strip()]


def tls_context(settings: Settings) -> ssl.SSLContext | bool:
    """Trust hosts signed by the configured CA and present our certificate (mTLS), when set."""
    if settings.sandbox_tls_ca is None:
        return True
    context = ssl.create_default_context(cafile=str(settings.sandbox_tls_ca))
    if settings.sandbox_tls_cert is not None and settings.sandbox_tls_key is not None:
        context.load_cert_chain(str(settings.sandbox_tls_cert), str(settings.sandbox_tls_key))
    return context


class RemoteBackend(SandboxBackend):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hosts: list[Host] = []
        self._sessions: dict[str, RemoteSession] = {}
        self._watcher: asyncio.Task | None = None
        self._first_round: asyncio.Task | None = None
        self._verify: ssl.SSLContext | bool | None = None

    async def start(self) -> None:
        urls = host_urls(self.settings)
        if not urls:
            raise SandboxError("The remote sandbox backend needs CODEINTERP_SANDBOX_HOSTS (comma-separated URLs).")
        if not self.settings.sandbox_host_secret:
            raise SandboxError("The remote sandbox backend needs CODEINTERP_SANDBOX_HOST_SECRET, the hosts' secret.")
        self.hosts = [self.make_host(url) for url in urls]
        self._first_round = asyncio.create_task(self._check_all())
        self._watcher = asyncio.create_task(self._watch())

    def make_host(self, url: str) -> Host:
        """A host at this URL, with its own client (the shared secret, TLS when set)."""
        if self._verify is None:
            self._verify = tls_context(self.settings)
        headers = {wire.SECRET_HEADER: f"Bearer {self.settings.sandbox_host_secret}"}
        transport = httpx.AsyncHTTPTransport(verify=self._verify, socket_options=NO_DELAY)
        return Host(url, httpx.AsyncClient(base_url=url, headers=headers, timeout=HEALTH_TIMEOUT, transport=transport))

    async def stop(self) -> None:
        for task in (self._watcher, self._first_round):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await asyncio.gather(*(session.close() for session in list(self._sessions.values())))
        for host in self.hosts:
            await host.client.aclose()

    # ---- sessions ------------------------------------------------------------------------

    async def _ready(self, expiry_seconds: float | None) -> float:
        """Once the backend's first look at its hosts is done: the new session's idle expiry."""
        if self._first_round is None:
            raise SandboxError("The sandbox backend was not started.")
        await asyncio.shield(self._first_round)
        return expiry_seconds if expiry_seconds is not None else self.settings.sandbox_idle_expiry_seconds

    async def create_session(self, limits: Limits | None = None,
                             expiry_seconds: float | None = None) -> RemoteSession:
        expiry = await self._ready(expiry_seconds)
        if not any(host.up for host in self.hosts):
            await self._check_all()  # perhaps back since the last look
        full = 0
        for host in sorted((h for h in self.hosts if h.up), key=lambda h: h.load):
            try:
                return await self.open_session(host, limits, expiry)
            except SessionLimitReached:
                full += 1
            except HostUnreachable:
                continue
        if full:
            raise SessionLimitReached("Every sandbox host runs as many sessions as it may; try again when one ends.")
        raise SandboxError("No sandbox host answers; sessions cannot start.")

    async def open_session(self, host: Host, limits: Limits | None, expiry: float) -> RemoteSession:
        """A new session on this host. Raises `HostUnreachable` (the host is then lost) or the
        host's error (`SessionLimitReached` when it is full)."""
        body = {"limits": wire.limits_to_json(limits) if limits else None, "expiry_seconds": expiry}
        try:
            response = await host.client.post("/sessions", json=body, timeout=CREATE_TIMEOUT)
        except httpx.TransportError as error:
            log.warning("sandbox host %s did not answer a new session: %s", host.url, error)
            self._host_lost(host)
            raise HostUnreachable(f"The sandbox host {host.url} does not answer.") from error
        answer = response.json() if response.headers.get("content-type") == "application/json" else {}
        if response.status_code != 200:
            raise wire.error_from(answer)
        if answer.get("host_id") != host.host_id:
            self._host_lost(host)  # restarted since it was last seen: what we held there is gone
        self._update(host, answer)
        session = RemoteSession(self, host, answer["id"], wire.limits_from_json(answer["limits"]), expiry)
        self._sessions[session.id] = session
        host.ours.add(session)
        return session

    def get(self, session_id: str) -> RemoteSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.closed or session.expired():
            return None
        return session

    def forget(self, session: RemoteSession) -> None:
        if self._sessions.pop(session.id, None) is not None:
            session.host.sessions = max(0, session.host.sessions - 1)  # until the next health check says
        session.host.ours.discard(session)

    async def check(self) -> None:
        await self._check_all()
        if not any(host.up for host in self.hosts):
            raise SandboxError("No sandbox host answers (" + ", ".join(host.url for host in self.hosts) + ").")

    def counts(self) -> dict[str, int]:
        return {"live_sessions": len(self._sessions)}

    # ---- hosts ---------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL)
            try:
                await self._check_all()
                for session in [s for s in self._sessions.values() if s.expired()]:
                    await session.close()  # its host closes it too, at the same expiry
            except Exception:  # noqa: BLE001 - the watch goes on
                log.exception("checking the sandbox hosts failed")

    async def _check_all(self) -> None:
        await asyncio.gather(*(self.check_host(host) for host in self.hosts))

    async def check_host(self, host: Host) -> None:
        """Read the host's health; a host that does not answer, or answers as another, loses its sessions."""
        try:
            response = await host.client.get("/health")
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            if host.up:
                log.error("sandbox host %s is lost (%s); its %d sessions end", host.url, error, len(host.ours))
            self._host_lost(host)
            return
        if host.host_id is not None and answer.get("host_id") != host.host_id:
            log.error("sandbox host %s restarted; its %d sessions were lost", host.url, len(host.ours))
            self._host_lost(host)
        self._update(host, answer)

    def _update(self, host: Host, answer: dict) -> None:
        host.host_id = answer.get("host_id")
        host.sessions = int(answer.get("sessions", 0))
        host.max_sessions = int(answer.get("max_sessions", 1))
        host.up = True

    def _host_lost(self, host: Host) -> None:
        host.up = False
        host.host_id = None
        for session in list(host.ours):
            session.lose()

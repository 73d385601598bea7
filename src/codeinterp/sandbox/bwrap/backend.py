"""The bubblewrap backend: sessions forked from one warm parent on this host, each in its own
namespaces, control groups and uid; a few kept warm ahead of demand; idle ones reaped. When
`codeinterp packages` changes the sandbox's environment, a new warm parent serves new sessions
and the old one lives on until its last session closes.

See `codeinterp.sandbox.interface` for the contract and `zygote.py` for the isolation."""

import asyncio
import logging
import os
import secrets
import time
import uuid

from codeinterp.config import Settings
from codeinterp.sandbox import packages
from codeinterp.sandbox.bwrap import cgroups
from codeinterp.sandbox.bwrap.channel import KernelChannel
from codeinterp.sandbox.bwrap.command import kernel_env
from codeinterp.sandbox.bwrap.parent import WarmParent
from codeinterp.sandbox.bwrap.probe import missing_isolation, total_memory_mb
from codeinterp.sandbox.bwrap.session import BwrapSession
from codeinterp.sandbox.interface import SandboxBackend
from codeinterp.sandbox.limits import limits_from
from codeinterp.sandbox.types import IsolationUnavailable, Limits, SandboxError, SessionLimitReached

log = logging.getLogger(__name__)

UID_SPAN = 1 << 24  # sessions take uids at random from [sandbox_uid_base, sandbox_uid_base + UID_SPAN)
REAPER_INTERVAL = 1.0
# After a session is handed out, the pool refills this much later while more than half of it remains:
# a new session's first cells do not share the CPU with the start of its replacement.
WARM_REFILL_DELAY_SECONDS = 0.05


class BwrapBackend(SandboxBackend):
    """`parent` is the warm parent; `parent_group` the control group all sessions share (None
    without cgroups)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.isolated = True
        self.parent = WarmParent(settings, isolated=True)
        self.parent_group: cgroups.ParentGroup | None = None
        self._sessions: dict[str, BwrapSession] = {}
        self._warm: list[BwrapSession] = []  # started, not yet handed out
        self._warm_wanted = asyncio.Event()
        self._warm_keeper: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self._starting: asyncio.Task | None = None
        self._restart_lock = asyncio.Lock()
        self._closing = False
        self._uids: set[int] = set()  # uids of live sessions
        self._generation = ""  # of the sandbox's environment the current parent imported
        self._retired: list[WarmParent] = []  # earlier parents, kept while sessions of theirs live
        self._switching: asyncio.Task | None = None

    # ---- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        missing = missing_isolation(self.settings)
        if missing and not self.settings.sandbox_unsafe:
            raise IsolationUnavailable("Sandboxes cannot be isolated on this host; missing: " + "; ".join(missing)
                                       + ". Set CODEINTERP_SANDBOX_UNSAFE=1 to run them without isolation.")
        self.isolated = not missing
        self.parent = WarmParent(self.settings, self.isolated)
        if self.isolated:
            await asyncio.to_thread(cgroups.remove_stale_managers)
            self.parent_group = await asyncio.to_thread(cgroups.ParentGroup, total_memory_mb(self.settings))
        python = self.settings.sandbox_env / "bin" / "python"
        if not python.exists():
            raise SandboxError(f"The sandbox's Python environment is missing ({python}); run scripts/setup.sh.")
        # The warm parent takes seconds to import the data stack: it starts in the background and
        # the first create_session waits for it, so that a server answers at once.
        self._generation = packages.generation(self.settings.sandbox_env)
        self._starting = asyncio.create_task(self.parent.start())
        self._reaper = asyncio.create_task(self._reap_idle())
        self._warm_keeper = asyncio.create_task(self._keep_warm())
        self._warm_wanted.set()

    async def wait_ready(self) -> None:
        """Wait until the warm parent is ready to fork kernels (raises if it failed to start)."""
        if self._starting is None:
            raise SandboxError("The sandbox backend was not started.")
        await asyncio.shield(self._starting)

    def ready(self) -> bool:
        """Whether the warm parent has started (successfully or not)."""
        return self._starting is not None and self._starting.done()

    async def check(self) -> None:
        if self._starting is None or self._closing:
            raise SandboxError("The sandbox backend is not running.")
        if not self._starting.done():
            raise SandboxError("The sandbox parent is still starting.")
        if self._starting.exception() is not None:
            raise SandboxError(f"The sandbox parent failed to start: {self._starting.exception()}")
        if not self.parent.running():
            raise SandboxError("The sandbox parent is not running (it is restarted on the next session).")

    def counts(self) -> dict[str, int]:
        return {"live_sessions": len(self._sessions), "warm_sessions": self.warm_ready}

    async def stop(self) -> None:
        self._closing = True
        self._warm_wanted.set()
        for task in (self._reaper, self._warm_keeper, self._starting, self._switching):
            if task is not None:
                await _stop(task)
        for session in list(self._warm) + list(self._sessions.values()):
            await session.close()
        for parent in [self.parent, *self._retired]:
            await parent.stop()
        if self.parent_group is not None:
            await asyncio.to_thread(self.parent_group.remove)

    async def _restart_parent(self) -> None:
        """The warm parent died (killed on the host, say): every session's kernel and files went with
        it, so those sessions end, and a new parent starts."""
        log.error("the sandbox parent exited with status %s; restarting it and closing %d sessions",
                  self.parent.process.returncode, len(self._sessions))
        for session in list(self._sessions.values()) + list(self._warm):
            if session.parent is self.parent:
                await session.close()
        self.parent.close_control()
        self._starting = asyncio.create_task(self.parent.start())
        await self.wait_ready()

    # ---- sessions ------------------------------------------------------------------------

    @property
    def sessions(self) -> list[BwrapSession]:
        return list(self._sessions.values())

    @property
    def warm_sessions(self) -> list[BwrapSession]:
        """Sessions started ahead of demand, not handed out yet (some may still be starting)."""
        return list(self._warm)

    @property
    def warm_ready(self) -> int:
        """How many warm sessions are started and waiting to be handed out."""
        return sum(1 for session in self._warm if session.kernel is not None)

    async def create_session(self, limits: Limits | None = None, expiry_seconds: float | None = None) -> BwrapSession:
        await self.wait_ready()
        async with self._restart_lock:
            if self.parent.process is not None and not self.parent.running():
                await self._restart_parent()
        if len(self._sessions) >= self.settings.sandbox_max_sessions:
            raise SessionLimitReached(f"This server runs at most {self.settings.sandbox_max_sessions} sandbox "
                                      "sessions at once; try again when one ends.")
        limits = limits or limits_from(self.settings)
        expiry = expiry_seconds if expiry_seconds is not None else self.settings.sandbox_idle_expiry_seconds
        session = self._take_warm(limits)
        if session is None:
            session = self._new_session(limits, expiry)
            self._sessions[session.id] = session
            await self._prepare(session)
        else:
            session.hand_out(expiry)
            self._sessions[session.id] = session
        self._warm_wanted.set()
        return session

    def get(self, session_id: str) -> BwrapSession | None:
        return self._sessions.get(session_id)

    def _new_session(self, limits: Limits, expiry: float) -> BwrapSession:
        session_id = "sbx_" + uuid.uuid4().hex[:24]
        return BwrapSession(self, self.parent, session_id, limits, expiry, self._allocate_uid(),
                            self.parent.session_root / session_id)

    async def _prepare(self, session: BwrapSession) -> None:
        """The session's directory and first kernel."""
        try:
            await asyncio.to_thread(self._make_data_dir, session)
            await session.start_kernel()
        except BaseException:
            await session.close()
            raise

    def _make_data_dir(self, session: BwrapSession) -> None:
        session.data_dir.mkdir(mode=0o755)
        if self.isolated:
            os.chown(session.data_dir, session.uid, session.uid)

    def _take_warm(self, limits: Limits) -> BwrapSession | None:
        """A warm session with these limits, if one is ready (one still starting has no kernel yet)."""
        for session in list(self._warm):
            if session.kernel is None:
                continue
            if not session.kernel.alive() or session.parent is not self.parent:  # dead, or older packages
                self._warm.remove(session)
                asyncio.ensure_future(session.close())
            elif session.limits == limits:
                self._warm.remove(session)
                return session
        return None

    async def _keep_warm(self) -> None:
        """Keep `sandbox_warm_sessions` sessions with the default limits started ahead of demand."""
        while not self._closing:
            await self._warm_wanted.wait()
            if len(self._warm) > self.settings.sandbox_warm_sessions // 2:  # not running low: the session
                await asyncio.sleep(WARM_REFILL_DELAY_SECONDS)  # just handed out runs its first cells first
            self._warm_wanted.clear()
            try:
                await self.wait_ready()
                while (not self._closing and len(self._warm) < self.settings.sandbox_warm_sessions
                       and len(self._sessions) + len(self._warm) < self.settings.sandbox_max_sessions):
                    session = self._new_session(limits_from(self.settings), self.settings.sandbox_idle_expiry_seconds)
                    self._warm.append(session)  # counted against the cap while it starts
                    try:
                        await self._prepare(session)
                    except BaseException:
                        if session in self._warm:
                            self._warm.remove(session)
                        raise
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - sessions start on demand meanwhile
                log.exception("starting a warm sandbox session failed")
                await asyncio.sleep(1)

    def _allocate_uid(self) -> int:
        """A uid of its own for a new session, drawn at random so that a uid just released (and
        another server's sessions on this host) are unlikely to be met again."""
        while True:
            uid = self.settings.sandbox_uid_base + secrets.randbelow(UID_SPAN)
            if uid not in self._uids:
                self._uids.add(uid)
                return uid

    # ---- what sessions ask of their backend ----------------------------------------------

    async def make_group(self, session: BwrapSession) -> cgroups.SessionGroup | None:
        """The session's control groups (None without cgroups)."""
        if self.parent_group is None:
            return None
        return await asyncio.to_thread(cgroups.SessionGroup, self.parent_group, session.id, session.limits.memory_mb,
                                       session.limits.pids, session.limits.cpu_shares)

    async def spawn_kernel(self, session: BwrapSession) -> KernelChannel:
        """A new kernel for the session, forked by the warm parent, in the session's groups."""
        limits = session.limits
        request = {"session": session.id, "isolate": self.isolated, "uid": session.uid, "tmp_mb": limits.tmp_mb,
                   "file_size_mb": limits.file_size_mb, "output_bytes": limits.output_bytes,
                   "data_mb": limits.data_mb, "env": kernel_env(self.settings, self.isolated),
                   "workdir": "/mnt/data" if self.isolated else str(session.data_dir)}
        return await session.parent.spawn(request, session.group)

    def session_closed(self, session: BwrapSession) -> None:
        """A session closed: its filesystem, its place and its uid are released."""
        session.parent.release(session.id)
        self._sessions.pop(session.id, None)
        if session in self._warm:
            self._warm.remove(session)
        self._uids.discard(session.uid)
        self._stop_unused_parents()

    # ---- packages changed ----------------------------------------------------------------

    def _follow_packages(self) -> None:
        """Start switching parents when the sandbox's environment has a new generation."""
        if self._switching is not None and not self._switching.done():
            return
        generation = packages.generation(self.settings.sandbox_env)
        if generation != self._generation and self.ready() and not self._closing:
            self._switching = asyncio.create_task(self._switch_parent(generation))

    async def _switch_parent(self, generation: str) -> None:
        """A new warm parent (importing the changed environment) for new sessions; live sessions
        keep the old one, which stops when the last of them closes."""
        parent = WarmParent(self.settings, self.isolated)
        try:
            await parent.start()
        except asyncio.CancelledError:
            await parent.stop()
            raise
        except Exception:  # noqa: BLE001 - the old parent serves on; the next change tries again
            log.exception("a warm parent for the changed sandbox packages failed to start")
            self._generation = generation
            return
        log.info("sandbox packages changed: new sessions start from a new warm parent")
        self._retired.append(self.parent)
        self.parent = parent
        self._generation = generation
        for session in list(self._warm):
            if session.parent is not parent:
                self._warm.remove(session)
                await session.close()
        self._stop_unused_parents()
        self._warm_wanted.set()

    def _stop_unused_parents(self) -> None:
        used = {id(session.parent) for session in [*self._sessions.values(), *self._warm]}
        for parent in [p for p in self._retired if id(p) not in used]:
            self._retired.remove(parent)
            asyncio.ensure_future(parent.stop())

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(REAPER_INTERVAL)
            self._follow_packages()
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if not session.busy() and now - session.last_used > session.expiry_seconds:
                    log.info("closing idle sandbox session %s", session.id)
                    try:
                        await session.close()
                    except Exception:  # noqa: BLE001 - one bad session must not stop the reaper
                        log.exception("closing idle sandbox session %s failed", session.id)


async def _stop(task: asyncio.Task, grace: float = 10) -> None:
    """Cancel a background task and wait briefly for it to end: a cancellation can be lost (a
    wait_for whose inner call finished at the same moment), and closing must not hang on it."""
    task.cancel()
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        log.error("a sandbox background task did not stop within %s seconds", grace)
    elif not task.cancelled() and task.exception() is not None:
        log.error("a sandbox background task ended with an error: %r", task.exception())

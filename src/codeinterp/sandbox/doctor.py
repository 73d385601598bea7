"""`codeinterp doctor`: which isolation features this host gives, and the sandbox's packages.

Each feature is OK or MISSING, with what a sandbox loses without it; then, where isolation is
there, the protections a real sandbox session shows from inside (a probe session is started and
asked); then whether the server would refuse to start sandboxes (it does when isolation is
missing, unless CODEINTERP_SANDBOX_UNSAFE=1), then the versions of the packages in
sandbox/requirements.txt as installed in the sandbox's own environment, the system programs
and fonts they call, and the offline data baked in at setup.
"""

import asyncio
import json
import tempfile
import os
import re
import shutil
import subprocess
from pathlib import Path

from codeinterp.config import Settings, get_settings
from codeinterp.sandbox import create_backend
from codeinterp.sandbox.bwrap import cgroups
from codeinterp.sandbox.bwrap.backend import UID_SPAN
from codeinterp.sandbox.bwrap.channel import wire_budget
from codeinterp.sandbox.bwrap.probe import missing_isolation, total_memory_mb
from codeinterp.sandbox.limits import limits_from
from codeinterp.sandbox.system_stack import Need, data_needs, system_needs

HERE = Path(__file__).parent
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "user")
CONTROLLERS = ("memory", "pids", "cpu")


def _check(name: str, ok: bool, detail: str, loss: str) -> dict:
    return {"name": name, "ok": ok, "detail": detail, "loss": loss}


def _bwrap() -> tuple[bool, str]:
    path = shutil.which("bwrap")
    if not path:
        return False, "not found on PATH"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"{path} does not run: {error}"
    works = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc",
                            "--", "/bin/true"], capture_output=True, timeout=10)
    if works.returncode != 0:
        return False, f"{path} ({out}) cannot build a sandbox: {works.stderr.decode(errors='replace').strip()}"
    return True, f"{path} ({out})"


def _namespaces() -> tuple[bool, str]:
    present = [ns for ns in NAMESPACES if os.path.exists(f"/proc/self/ns/{ns}")]
    missing = [ns for ns in NAMESPACES[:5] if ns not in present]
    return not missing, ", ".join(present) + (f"; missing: {', '.join(missing)}" if missing else "")


def _cgroups() -> tuple[bool, str]:
    version = cgroups.version()
    if version is None:
        return False, "no cgroup hierarchy with memory, pids and cpu controllers under /sys/fs/cgroup"
    if version == 1:
        found = [c for c in CONTROLLERS if (cgroups.ROOT / c).is_dir()]
        extra = "memsw" if (cgroups.ROOT / "memory" / "memory.memsw.limit_in_bytes").exists() else "no memsw (swap)"
    else:
        found = [c for c in CONTROLLERS if c in (cgroups.ROOT / "cgroup.controllers").read_text().split()]
        extra = "unified hierarchy"
    writable = cgroups.usable()
    return writable, (f"v{version}, controllers: {', '.join(found)} ({extra})"
                      + ("" if writable else "; not writable by this user"))


def _seccomp() -> tuple[bool, str]:
    status = Path("/proc/self/status").read_text()
    if "Seccomp:" not in status:
        return False, "the kernel has no seccomp (CONFIG_SECCOMP_FILTER)"
    return True, "seccomp filters supported by the kernel (applied to each kernel via pyseccomp)"


def _no_new_privs() -> tuple[bool, str]:
    status = Path("/proc/self/status").read_text()
    if "NoNewPrivs:" not in status:
        return False, "the kernel does not report no_new_privs"
    return True, "supported (bubblewrap sets it; set-uid programs cannot raise a sandbox's privileges)"


def _sandbox_python(settings: Settings) -> Path:
    return settings.sandbox_env / "bin" / "python"


def sandbox_packages(settings: Settings) -> dict[str, str | None]:
    """{requirement name: version installed in the sandbox env, or None when missing}."""
    wanted = []
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            wanted.append(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0])
    python = _sandbox_python(settings)
    installed: dict[str, str] = {}
    if python.exists():
        try:
            out = subprocess.run([str(python), "-m", "pip", "list", "--format", "json",
                                  "--disable-pip-version-check"],
                                 capture_output=True, text=True, timeout=60).stdout
            installed = {_normal(p["name"]): p["version"] for p in json.loads(out or "[]")}
        except (OSError, subprocess.SubprocessError, ValueError):
            installed = {}
    return {name: installed.get(_normal(name)) for name in wanted}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def checks(settings: Settings) -> list[dict]:
    root = os.geteuid() == 0
    bwrap_ok, bwrap_detail = _bwrap()
    ns_ok, ns_detail = _namespaces()
    cg_ok, cg_detail = _cgroups()
    sc_ok, sc_detail = _seccomp()
    nnp_ok, nnp_detail = _no_new_privs()
    python = _sandbox_python(settings)
    return [
        _check("root", root, f"euid {os.geteuid()}",
               "cannot build namespaces, mounts and cgroups per session or drop to uid 65534"),
        _check("bubblewrap", bwrap_ok, bwrap_detail,
               "no read-only system view, no private /mnt/data and /tmp: code sees the host's files"),
        _check("namespaces", ns_ok, ns_detail,
               "no private network, PID, IPC or mount view: code reaches the host's loopback and processes"),
        _check("cgroups", cg_ok, cg_detail,
               "no memory, process-count or CPU limit per session: a bomb can starve the host"),
        _check("seccomp", sc_ok, sc_detail,
               "no syscall filter: ptrace, mount, unshare, bpf, keyctl ... stay reachable"),
        _check("no_new_privs", nnp_ok, nnp_detail,
               "set-uid programs could raise a sandbox's privileges"),
        _check("sandbox_python", python.exists(), str(python),
               "no sandbox environment: run scripts/setup.sh"),
    ]


# Run inside a probe session: what the session itself can see and do.
PROBE = """
import ctypes, errno, fcntl, json, os, socket, termios
libc = ctypes.CDLL(None, use_errno=True)
def refused(call):
    try:
        call()
        return None
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
master, slave = os.openpty()
print(json.dumps({
    "tty": refused(lambda: os.close(os.open('/dev/tty', os.O_RDWR))),
    "console": os.path.exists('/dev/console'),
    "tiocsti": refused(lambda: fcntl.ioctl(slave, termios.TIOCSTI, b'x')),
    "own_session": os.getsid(0) == os.getpid() == os.getpgid(0),
    "uid": os.getuid(),
    "vsock": refused(lambda: socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()),
    "packet": refused(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()),
    "inet": refused(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
    "pts": sorted(os.listdir('/dev/pts')),
}))
"""


def probe_session(settings: Settings) -> dict:
    """Start a sandbox session as the server would and run PROBE in it."""
    async def probe() -> dict:
        with tempfile.TemporaryDirectory(prefix="codeinterp-doctor-") as data_dir:
            backend = create_backend(settings.model_copy(update={"sandbox_backend": "bwrap", "sandbox_warm_sessions": 0,
                                                                 "data_dir": Path(data_dir)}))
            try:
                await backend.start()
                session = await backend.create_session()
                result = await session.execute(PROBE, timeout=60)
                return json.loads(result.text)
            finally:
                await backend.stop()

    return asyncio.run(probe())


def protection_checks(settings: Settings) -> list[dict]:
    """The protections a session shows from inside, and the byte budgets the server applies."""
    try:
        seen = probe_session(settings)
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return [_check("probe_session", False, f"a probe session did not run: {error}",
                       "the protections below could not be checked")]
    base = settings.sandbox_uid_base
    limits = limits_from(settings)
    return [
        _check("terminal", seen["tty"] in ("ENXIO", "ENOENT") and not seen["console"] and seen["tiocsti"] == "EPERM",
               f"no controlling terminal (/dev/tty: {seen['tty']}), no /dev/console, TIOCSTI refused "
               f"({seen['tiocsti']}); terminals of its own only (/dev/pts: {', '.join(seen['pts'])})",
               "code could type commands into the operator's shell"),
        _check("process_group", seen["own_session"], "each kernel leads its own session and process group",
               "kill(0) or setpriority(PRIO_PGRP) would reach other sessions' kernels"),
        _check("session_uid", base <= seen["uid"] < base + UID_SPAN,
               f"each session runs as a uid of its own (this one: {seen['uid']}; drawn from {base}..{base + UID_SPAN - 1})",
               "sessions would share per-user kernel budgets (inotify, message queues)"),
        _check("socket_families", seen["vsock"] == "EPERM" and seen["packet"] == "EPERM" and seen["inet"] is None,
               "unix, inet, inet6 and routing netlink only (vsock, packet, ... refused)",
               "vsock and other families could reach past the network namespace"),
        _check("byte_budgets", True,
               f"output {limits.output_bytes} bytes per execution (at most {wire_budget(limits)} bytes read from a "
               f"kernel per execution, none between executions); {limits.memory_mb} MB memory per session, "
               f"{total_memory_mb(settings)} MB for all sessions together", ""),
    ]


def _print_checks(items: list[dict]) -> None:
    for item in items:
        state = "OK     " if item["ok"] else "MISSING"
        print(f"  {state} {item['name']:<15} {item['detail']}")
        if not item["ok"]:
            print(f"          {'':<15} without it: {item['loss']}")


def _print_needs(title: str, needs: list[Need]) -> None:
    print()
    print(title)
    for need in needs:
        print(f"  {'OK     ' if need.present else 'MISSING'} {need.name:<24} {need.path} ({need.used_by})")


def run_doctor(settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    print("Isolation on this host:")
    _print_checks(checks(settings))
    missing = missing_isolation(settings)
    protections = []
    if not missing:
        print()
        print("Protections, as a probe session sees them:")
        protections = protection_checks(settings)
        _print_checks(protections)
    print()
    if missing:
        if settings.sandbox_unsafe:
            print("Sandboxes: UNSAFE mode (CODEINTERP_SANDBOX_UNSAFE=1): the server starts sandboxes WITHOUT "
                  "isolation; missing: " + "; ".join(missing))
        else:
            print("Sandboxes: the server REFUSES to start sandboxes here (missing: " + "; ".join(missing)
                  + "); set CODEINTERP_SANDBOX_UNSAFE=1 to run them without isolation.")
    else:
        print("Sandboxes: fully isolated (bubblewrap, namespaces, cgroups, seccomp, a uid per session); "
              "the server starts them without CODEINTERP_SANDBOX_UNSAFE.")
    print()
    print(f"Sandbox packages ({settings.sandbox_env}):")
    packages = sandbox_packages(settings)
    for name, version in packages.items():
        print(f"  {name:<16} {version or 'MISSING'}")
    programs = system_needs()
    _print_needs("System programs and fonts (scripts/setup.sh installs them):", programs)
    _print_needs("Offline data (baked in by scripts/setup.sh):", data_needs(settings.sandbox_env))
    ok = (not missing and all(item["ok"] for item in protections) and all(packages.values())
          and all(need.present for need in programs) and _sandbox_python(settings).exists())
    return 0 if ok or settings.sandbox_unsafe else 1

"""`codeinterp doctor`: which isolation features this host gives, and the sandbox's packages.

Each feature is OK or MISSING, with what a sandbox loses without it; then whether the server
would refuse to start sandboxes (it does when isolation is missing, unless
CODEINTERP_SANDBOX_UNSAFE=1), then the versions of the packages in sandbox/requirements.txt
as installed in the sandbox's own environment.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from codeinterp.config import Settings, get_settings
from codeinterp.sandbox import cgroups
from codeinterp.sandbox.manager import missing_isolation

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


def run_doctor(settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    print("Isolation on this host:")
    results = checks(settings)
    for item in results:
        state = "OK     " if item["ok"] else "MISSING"
        print(f"  {state} {item['name']:<15} {item['detail']}")
        if not item["ok"]:
            print(f"          {'':<15} without it: {item['loss']}")
    missing = missing_isolation(settings)
    print()
    if missing:
        if settings.sandbox_unsafe:
            print("Sandboxes: UNSAFE mode (CODEINTERP_SANDBOX_UNSAFE=1): the server starts sandboxes WITHOUT "
                  "isolation; missing: " + "; ".join(missing))
        else:
            print("Sandboxes: the server REFUSES to start sandboxes here (missing: " + "; ".join(missing)
                  + "); set CODEINTERP_SANDBOX_UNSAFE=1 to run them without isolation.")
    else:
        print("Sandboxes: fully isolated (bubblewrap, namespaces, cgroups, seccomp, uid 65534); "
              "the server starts them without CODEINTERP_SANDBOX_UNSAFE.")
    print()
    print(f"Sandbox packages ({settings.sandbox_env}):")
    packages = sandbox_packages(settings)
    for name, version in packages.items():
        print(f"  {name:<16} {version or 'MISSING'}")
    ok = not missing and all(packages.values()) and _sandbox_python(settings).exists()
    return 0 if ok or settings.sandbox_unsafe else 1

"""The warm parent's command line: bubblewrap's view of the host (read-only system, the sandbox's
Python environment, a memory-backed /sessions, codeinterp's in-sandbox files) and the kernels'
environment."""

import os
import subprocess
from pathlib import Path

from codeinterp.config import Settings

HERE = Path(__file__).parent
SANDBOX_FILES = ("zygote.py", "kernel.py", "seccomp_policy.py", "ace_tools.py")  # all of codeinterp that a sandbox sees
INSIDE = "/opt/codeinterp"
INSIDE_ENV = "/opt/venv"  # where the sandbox's Python environment appears inside
INSIDE_WHEELHOUSE = "/opt/wheelhouse"  # CODEINTERP_SANDBOX_WHEELHOUSE, read-only
SESSION_LAYER = "/tmp/.packages"  # where a session's own `pip install` puts packages


def kernel_env(settings: Settings, isolated: bool) -> dict[str, str]:
    """The environment a kernel runs with."""
    env_dir = INSIDE_ENV if isolated else str(settings.sandbox_env.resolve())
    has_font_cache = (settings.sandbox_env / "mplconfig").is_dir()
    env = {"PATH": f"{env_dir}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "MPLCONFIGDIR": "/tmp/.matplotlib", "MPL_CACHE_SEED": f"{env_dir}/mplconfig" if has_font_cache else "",
           "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp"}
    if isolated:
        # `pip install` in a session: from the wheelhouse only, never the network, into a layer in
        # the session's /tmp (it dies with the session and counts against its size; zygote.py puts
        # it on the path).
        env.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": INSIDE_WHEELHOUSE, "PIP_PREFIX": SESSION_LAYER,
                    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1",
                    "PIP_NO_WARN_SCRIPT_LOCATION": "1"})
    return env


def bwrap_command(settings: Settings, base_prefix: str, python_version: str) -> list[str]:
    """bubblewrap's arguments up to (not including) the environment and the program."""
    command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-ipc", "--unshare-uts",
               "--cap-add", "ALL", "--clearenv", "--perms", "0755", "--dir", "/etc"]  # else root's alone
    for path in ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc/fonts", "/etc/ssl", "/etc/localtime",
                 "/etc/ld.so.cache", "/etc/mime.types",
                 "/etc/alternatives", "/etc/chromium.d"):  # Debian's chosen BLAS (for ffmpeg); chromium's wrapper
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    # bwrap would make the missing parents (/root, say) private to root; the kernel runs as nobody.
    for parent in reversed(Path(base_prefix).parents[:-1]):
        command += ["--perms", "0755", "--dir", str(parent)]
    command += ["--ro-bind", base_prefix, base_prefix, "--perms", "0755", "--dir", "/opt",
                "--ro-bind", str(settings.sandbox_env.resolve()), INSIDE_ENV]
    # The base interpreter's own packages are the host's business, not the sandbox's.
    base_packages = Path(base_prefix) / "lib" / f"python{python_version}" / "site-packages"
    if base_packages.is_dir():
        command += ["--tmpfs", str(base_packages)]
    # Every session's /mnt/data lives in one memory-backed filesystem that only the warm parent
    # sees (the host reaches it through /proc); it goes away with the parent and cannot fill the disk.
    sessions_bytes = str(settings.sandbox_sessions_tmpfs_mb * 1024 * 1024)
    command += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--size", sessions_bytes, "--perms", "0711", "--tmpfs", "/sessions",
                "--dir", "/mnt/data", "--dir", INSIDE]
    for name in SANDBOX_FILES:
        command += ["--ro-bind", str(HERE / name), f"{INSIDE}/{name}"]
    if settings.sandbox_wheelhouse is not None and settings.sandbox_wheelhouse.is_dir():
        command += ["--ro-bind", str(settings.sandbox_wheelhouse.resolve()), INSIDE_WHEELHOUSE]
    # localhost and the sandbox's own hostname resolve to loopback; nothing else resolves.
    for name in ("hosts", "nsswitch.conf"):
        command += ["--ro-bind", str(HERE / "etc" / name), f"/etc/{name}"]
    command += ["--remount-ro", "/"]
    return command


def parent_command(settings: Settings, isolated: bool, control_fd: int) -> tuple[list[str], dict[str, str]]:
    """(command, environment) that start the warm parent with its control socket on `control_fd`.
    Blocking (it asks the sandbox's Python where it lives): call it from a thread."""
    python = settings.sandbox_env / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True)
    base_prefix, python_version = probe.stdout.split()
    env = kernel_env(settings, isolated)
    if not isolated:
        return [str(python.absolute()), str(HERE / "zygote.py"), str(control_fd)], env
    command = bwrap_command(settings, base_prefix, python_version)
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += ["--", f"{INSIDE_ENV}/bin/python", f"{INSIDE}/zygote.py", str(control_fd)]
    return command, {}

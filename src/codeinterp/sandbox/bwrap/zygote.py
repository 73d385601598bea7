"""The warm parent: imports the data stack once, then forks one isolated kernel per request.

It runs under the sandbox's own Python inside bubblewrap (read-only system, no network,
all capabilities kept so that it can build each child's namespaces), and imports nothing of
codeinterp. The manager sends requests on the control socket (its descriptor is the first argument), each a JSON
object with one file descriptor attached: the kernel's end of its socket.

Each child: new mount, PID, network, IPC and UTS namespaces; its session's directory bound on
/mnt/data and every other session's hidden; a size-capped /tmp; a terminal device instance of
its own (/dev/pts); then a second fork, so that the kernel is PID 1 of its namespace (killing it
ends every process of the session) and leads a session and process group of its own, with no
controlling terminal; a fresh /proc; resource limits; the session's own uid and gid (so that
per-user kernel budgets are the session's alone) without capabilities; no new privileges; a
seccomp filter; random generators seeded anew. The middle process reports the kernel's host PID
on the kernel's socket and exits.
"""

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys

import seccomp_policy

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
GO = b'{"type": "go"}\n'  # the manager's word that the kernel is in its cgroups and may start
SECCOMP_PROGRAM = b""  # the seccomp filter, compiled once by main() before any kernel is forked

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), f"mount {target}")


def enter_namespaces(request: dict) -> None:
    """In the middle process: the session's own namespaces and filesystem view."""
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount(f"/sessions/{request['session']}", "/mnt/data", None, MS_BIND)
    check(libc.umount2(b"/sessions", MNT_DETACH), "umount /sessions")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={request['tmp_mb']}m,mode=1777")
    os.makedirs("/dev/shm", exist_ok=True)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    # Terminals: an instance of its own (another session's ptys cannot be opened, nor listed),
    # and never the host's (bubblewrap binds the host's terminal on /dev/console when it has one).
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,max=64")
    if os.path.ismount("/dev/console"):
        check(libc.umount2(b"/dev/console", MNT_DETACH), "umount /dev/console")
    socket.sethostname("sandbox")  # /etc/hosts (bound by bubblewrap) maps it to loopback
    bring_up_loopback()


def bring_up_loopback() -> None:
    """A new network namespace's loopback is down: up, so that a session's own server and client
    (a multiprocessing manager, a local cluster) can talk; other sessions' are other namespaces."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def become_kernel(request: dict) -> None:
    """In the kernel (PID 1 of the new namespace): its /proc, limits, identity and filter."""
    check(libc.umount2(b"/proc", MNT_DETACH), "umount /proc")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    file_size = request["file_size_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    uid = request["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    seccomp_policy.install(SECCOMP_PROGRAM)
    os.environ.clear()
    os.environ.update(request["env"])
    if "PIP_PREFIX" in os.environ:  # the session's own packages (see command.kernel_env), first on the path
        layer = f"{os.environ['PIP_PREFIX']}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
        os.makedirs(layer, exist_ok=True)
        sys.path.insert(0, layer)
        os.environ["PYTHONPATH"] = layer


def isolated_child(request: dict, kernel_sock: socket.socket) -> None:
    """The middle process; never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if request["isolate"]:
            enter_namespaces(request)
        pid = os.fork()
        if pid:
            kernel_sock.sendall((json.dumps({"type": "pid", "pid": pid}) + "\n").encode())
            os._exit(0)
        os.setsid()  # its own session and process group, without a controlling terminal
        if request["isolate"]:
            become_kernel(request)
        if kernel_sock.recv(len(GO), socket.MSG_WAITALL) != GO:
            os._exit(0)
        import kernel

        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["workdir"])
        kernel.serve(kernel_sock, request["output_bytes"])
    except BaseException as error:  # report, never fall back into the zygote's loop
        try:
            kernel_sock.sendall((json.dumps({"type": "failed", "error": repr(error)}) + "\n").encode())
        finally:
            os._exit(1)
    os._exit(0)


def mount_data_dir(request: dict) -> None:
    """A session's /mnt/data is a memory-backed filesystem of its own, capped at data_mb, so that one
    session cannot fill the space of the others; mounted at its first kernel, kept across restarts."""
    path = f"/sessions/{request['session']}"
    if request.get("isolate") and request.get("data_mb") and not os.path.ismount(path):
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
              f"size={request['data_mb']}m,mode=0755,uid={request['uid']},gid={request['uid']}")


def reap(*_args) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    seed = os.environ.pop("MPL_CACHE_SEED", "")
    if seed and os.path.isdir(seed):  # matplotlib's font cache, built at setup, copied where it may write
        import shutil

        shutil.copytree(seed, os.environ["MPLCONFIGDIR"], dirs_exist_ok=True)
    import kernel

    kernel.prepare()
    global SECCOMP_PROGRAM
    SECCOMP_PROGRAM = seccomp_policy.compile_filter()
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(sys.argv[1]))
    control.sendall(json.dumps({"type": "ready", "pid": os.getpid()}).encode())
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 65536, 4)
        except InterruptedError:
            continue
        if not message:
            return
        request = json.loads(message)
        if request.get("type") == "release":  # a closed session: drop its /mnt/data filesystem
            libc.umount2(f"/sessions/{request['session']}".encode(), MNT_DETACH)
            continue
        kernel_sock = socket.socket(fileno=fds[0])
        try:
            mount_data_dir(request)
        except OSError as error:
            kernel_sock.sendall((json.dumps({"type": "failed", "error": repr(error)}) + "\n").encode())
            kernel_sock.close()
            continue
        if os.fork() == 0:
            control.close()
            isolated_child(request, kernel_sock)
        kernel_sock.close()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()

"""The seccomp filter of every sandbox kernel: everything allowed but the calls listed here,
which fail with EPERM. Runs inside the sandbox (with the sandbox's Python and pyseccomp).

A sandbox has no use for these calls and each widens what code in it can reach: debugging
other processes, mounts and namespaces, kernel keyrings, BPF and perf, loading kernel code,
rebooting, swap, clocks, host names, raw I/O ports; ioctls that push input into a terminal;
socket families other than local, IP and routing netlink (vsock, packet, bluetooth, ...)."""

import contextlib
import ctypes
import errno
import os

import pyseccomp

DENIED_SYSCALLS = [
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "open_by_handle_at", "name_to_handle_at", "syslog", "quotactl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm", "lookup_dcookie", "fanotify_init", "move_mount", "open_tree", "fsopen",
    "fsmount", "fspick", "mount_setattr", "personality", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
]

# clone() may make threads and processes, never new namespaces (a user namespace would hand the
# code every capability inside it). clone3() passes its flags in memory, where a filter cannot
# look, so it fails with ENOSYS and the C library falls back to clone().
NAMESPACE_FLAGS = [0x10000000, 0x00020000, 0x20000000, 0x40000000, 0x08000000, 0x04000000, 0x02000000]

# ioctl requests that inject input into a terminal (TIOCSTI) or drive the console (TIOCLINUX).
# The kernel reads the request as 32 bits: the filter compares those 32 bits only, so that a
# request with high bits set cannot slip past it.
DENIED_IOCTLS = [0x5412, 0x541C]
LOW_32 = 0xFFFFFFFF

# Socket families a kernel may open: local sockets, IPv4 and IPv6 (its network namespace has
# only its own loopback) and routing netlink (the C library's getaddrinfo asks it). Every other
# family below AF_MAX (46 on Linux 6.x; higher values fail in the kernel anyway) is refused.
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
ALLOWED_FAMILIES = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}
AF_MAX = 46
NETLINK_ROUTE = 0


def compile_filter() -> bytes:
    """The filter as a BPF program, built once in the warm parent (building it in every kernel
    cost each one its time and heap pages)."""
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    deny = pyseccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(deny, name)
        except Exception:  # noqa: BLE001 - a call this architecture does not have
            pass
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(deny, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    for request in DENIED_IOCTLS:
        rules.add_rule(deny, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, LOW_32, request))
    for call in ("socket", "socketpair"):
        for family in range(AF_MAX):
            if family not in ALLOWED_FAMILIES:
                rules.add_rule(deny, call, pyseccomp.Arg(0, pyseccomp.MASKED_EQ, LOW_32, family))
        # netlink: routing only (audit, uevents, sock_diag ... tell of or act on the host)
        rules.add_rule(deny, call, pyseccomp.Arg(0, pyseccomp.MASKED_EQ, LOW_32, AF_NETLINK),
                       pyseccomp.Arg(2, pyseccomp.NE, NETLINK_ROUTE))
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as out:
            rules.export_bpf(out)
        with os.fdopen(read_end, "rb") as program:
            return program.read()
    except BaseException:
        for fd in (read_end, write_end):
            with contextlib.suppress(OSError):
                os.close(fd)
        raise


class _SockFilterProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def install(program: bytes) -> None:
    """Load a program from `compile_filter` into this process (inherited by every process it
    starts), with no_new_privs set first, so set-uid programs cannot regain privileges."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    fprog = _SockFilterProgram(len(program) // 8, program)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")

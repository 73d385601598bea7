"""The seccomp filter of every sandbox kernel: everything allowed but the calls listed here,
which fail with EPERM. Runs inside the sandbox (with the sandbox's Python and pyseccomp).

A sandbox has no use for these calls and each widens what code in it can reach: debugging
other processes, mounts and namespaces, kernel keyrings, BPF and perf, loading kernel code,
rebooting, swap, clocks, host names, raw I/O ports."""

import errno

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


def install() -> None:
    """Load the filter into this process (inherited by every process it starts); also sets
    no_new_privs, so setuid programs cannot regain privileges."""
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except Exception:  # noqa: BLE001 - a call this architecture does not have
            pass
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()

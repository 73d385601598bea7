"""The bubblewrap backend (sessions on this host). Its parts, by job:

    probe.py     what isolation this host gives
    command.py   the warm parent's bubblewrap command line and the kernels' environment
    parent.py    the warm parent: start it, ask it for a kernel over its control socket
    channel.py   the host's end of one kernel (bounded reads, a pidfd for signals)
    session.py   one session: execute, interrupt, files, close
    backend.py   sessions, the warm pool, the reaper, uids, the shared control group
    cgroups.py, datadir.py   control groups; /mnt/data read and written without following links
    zygote.py, kernel.py, seccomp_policy.py,  what runs inside the sandbox (bound in read-only;
    ace_tools.py, etc/                        ace_tools is importable by user code)
"""

from codeinterp.sandbox.bwrap.backend import BwrapBackend

__all__ = ["BwrapBackend"]

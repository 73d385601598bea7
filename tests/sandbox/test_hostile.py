"""Hostile code, one attack per test: each tries to break out of its session, and afterwards the
host is checked and a neighbouring session must still answer `1+1`.

The harness here has small limits (256 MB memory, 64 processes, 1 MB output, 64 MB /tmp, 64 MB
of /mnt/data per session) so that bombs go off quickly.
"""

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from codeinterp.sandbox.bwrap.channel import wire_budget
from codeinterp.sandbox.interface import read_all
from tests.sandbox.conftest import SandboxHarness, session_group

SECRET = "sk-hostile-test-secret-4f9a2c"
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in ("CODEINTERP_API_KEY", "HOSTILE_TEST_SECRET")}
    # A server secret in the server's own environment while sandboxes start and run.
    os.environ["CODEINTERP_API_KEY"] = SECRET
    os.environ["HOSTILE_TEST_SECRET"] = SECRET
    harness = SandboxHarness(tmp_path_factory.mktemp("hostile"), sandbox_exec_timeout_seconds=20,
                             sandbox_interrupt_grace_seconds=1, sandbox_memory_mb=256, sandbox_pids=64,
                             sandbox_output_bytes=1024 * 1024, sandbox_tmp_mb=64, sandbox_sessions_tmpfs_mb=256,
                             sandbox_data_mb=64, sandbox_file_size_mb=512,
                             sandbox_cpu_shares=256)  # not the kernel's default (1024)
    yield harness
    harness.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def neighbour(hostile):
    session = hostile.session()
    result = hostile.execute(session, "open('/mnt/data/neighbour-secret.txt', 'w').write('NEIGHBOUR-DATA')\n1+1")
    assert result.text.strip() == "2"
    return session


@pytest.fixture
def attacker(hostile, neighbour):
    session = hostile.session()
    yield session
    hostile.run(session.close())
    # After every attack: the neighbour answers, its files are intact, and the host still forks.
    result = hostile.execute(neighbour, "1+1", timeout=30)
    assert result.status == "ok" and result.text == "2\n", result.outputs
    assert hostile.execute(neighbour, "open('/mnt/data/neighbour-secret.txt').read()").text == "'NEIGHBOUR-DATA'\n"
    assert subprocess.run(["true"], timeout=10).returncode == 0


def run(hostile, session, code: str, timeout: float | None = None):
    return hostile.execute(session, code, timeout=timeout)


def printed(result) -> str:
    return "".join(o.text for o in result.outputs if o.kind == "stdout")


PROBE = """
import os
def probe(path, mode='r'):
    try:
        if os.path.isdir(path) and mode == 'r':
            return 'LISTED ' + ','.join(sorted(os.listdir(path)))
        with open(path, mode) as f:
            if mode == 'r':
                return 'READ ' + f.read(200).replace('\\n', ' ')
            f.write('pwned')
            return 'WROTE'
    except Exception as e:
        return 'DENIED ' + type(e).__name__
"""


# ---- reading the host --------------------------------------------------------------------------

def test_host_files_are_not_readable(hostile, attacker):
    venv = str(PROJECT / ".venv")
    code = PROBE + f"""
for path in ['/etc/shadow', '/etc/passwd-', '/root/.bashrc', '/root/.ssh', {str(PROJECT)!r},
             {str(PROJECT / 'pyproject.toml')!r}, {venv!r}, {str(PROJECT / 'src/codeinterp/config.py')!r},
             '/work', '/home', '/var/lib', '/sys/fs/cgroup', '/proc/1/root/etc/shadow']:
    print(path, '=>', probe(path))
print('ROOT', sorted(os.listdir('/root')))
"""
    result = run(hostile, attacker, code)
    lines = printed(result).splitlines()
    for line in lines[:-1]:
        assert "=> DENIED" in line, line
    # /root holds only the path down to the base interpreter (bound read-only), nothing of the host's
    assert lines[-1] in ("ROOT []", "ROOT ['.pyenv']"), lines[-1]
    assert Path("/etc/shadow").exists()  # the host's file is still there


def test_codeinterp_server_modules_are_not_importable(hostile, attacker):
    # (sqlalchemy, once checked here, is in the sandbox's own stack now; alembic is the server's alone)
    result = run(hostile, attacker, "import importlib.util\nprint(importlib.util.find_spec('codeinterp'),"
                                    " importlib.util.find_spec('fastapi'), importlib.util.find_spec('alembic'))")
    assert printed(result) == "None None None\n"


def test_server_secrets_are_not_in_the_environment(hostile, attacker):
    assert os.environ["CODEINTERP_API_KEY"] == SECRET
    code = f"""
import os, glob
print(sorted(os.environ))
print({SECRET!r} in repr(dict(os.environ)))
found = []
for path in glob.glob('/proc/*/environ') + ['/proc/1/environ', '/proc/self/environ']:
    try:
        if {SECRET!r}.encode() in open(path, 'rb').read():
            found.append(path)
    except Exception:
        pass
print('FOUND', found)
print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
"""
    names, leaked, found, pids = printed(run(hostile, attacker, code)).splitlines()
    assert "CODEINTERP_API_KEY" not in names and not any("CODEINTERP" in n for n in eval(names))
    assert leaked == "False"
    assert found == "FOUND []"
    # its own PID namespace: only the session's processes, not the server's (nor the warm parent)
    seen = eval(pids.split(" ", 1)[1])
    assert seen[0] == 1 and len(seen) <= 3  # the kernel is PID 1 of its own namespace


def test_other_sessions_files_are_out_of_reach(hostile, attacker, neighbour):
    # The neighbour's file lives at /sessions/<its id>/ in the warm parent; each kernel's view has
    # /sessions unmounted, so neither that path nor any way round through /proc reaches it.
    secret = "neighbour-secret.txt"
    paths = [f"/sessions/{neighbour.id}/{secret}", f"/sessions/{neighbour.id}",
             f"/proc/1/root/sessions/{neighbour.id}/{secret}", f"/mnt/data/../../sessions/{neighbour.id}/{secret}"]
    code = PROBE + f"""
import glob
for path in {paths!r}:
    print(path, '=>', probe(path))
print('/sessions =>', probe('/sessions'))
print('LISTING', sorted(os.listdir('/mnt/data')))
print('GLOBS', [h for pattern in ['/proc/*/root/sessions/*', '/proc/*/root/mnt/data/*', '/tmp/*', '/opt/*']
                for h in glob.glob(pattern) if 'neighbour' in h or '/sessions/' in h])
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    for line in lines[:len(paths)]:
        assert "=> DENIED FileNotFoundError" in line, line
    # what is left of /sessions is the empty mount point, not the warm parent's filesystem
    assert lines[len(paths):] == ["/sessions => LISTED ", "LISTING []", "GLOBS []"]


# ---- network -----------------------------------------------------------------------------------

def test_no_network_to_host_loopback_or_outside(hostile, attacker):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    code = f"""
import socket
def attempt(host, port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(2)
    try:
        s.connect((host, port))
        if kind == socket.SOCK_DGRAM:
            s.send(b'x'); s.recv(10)
        return 'CONNECTED'
    except Exception as e:
        return 'FAILED ' + type(e).__name__
    finally:
        s.close()
print(attempt('127.0.0.1', {port}))
print(attempt('1.1.1.1', 53))
print(attempt('1.1.1.1', 53, socket.SOCK_DGRAM))
print(attempt('10.0.0.1', 80))
try:
    print('RESOLVED', socket.getaddrinfo('pypi.org', 443))
except Exception as e:
    print('DNS FAILED', type(e).__name__)
import os
print(sorted(os.listdir('/sys/class/net')) if os.path.isdir('/sys/class/net') else 'no-sys')
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    try:
        conn, _ = listener.accept()
        conn.close()
        accepted = True
    except (socket.timeout, BlockingIOError):
        accepted = False
    finally:
        listener.close()
    assert not accepted
    assert all(line.startswith("FAILED") for line in lines[:4]), lines
    assert lines[4].startswith("DNS FAILED"), lines


LOOPBACK_SERVER = """
import socket, threading
names = {name: socket.gethostbyname(name) for name in ('localhost', socket.gethostname())}
server = socket.create_server(('localhost', 8765))
def answer():
    conn, _ = server.accept()
    conn.sendall(b'pong:' + conn.recv(10))
    conn.close()
threading.Thread(target=answer, daemon=True).start()
with socket.create_connection(('localhost', 8765), timeout=5) as client:
    client.sendall(b'ping')
    print(names, client.recv(20))
try:
    socket.gethostbyname('pypi.org')
    print('RESOLVED')
except OSError as e:
    print('DNS FAILED', type(e).__name__)
"""


def test_a_session_talks_to_itself_over_loopback_and_nothing_else_resolves(hostile, attacker, neighbour):
    """localhost and the sandbox's hostname are loopback; a server and client in one session talk;
    a neighbour session on the same port has its own loopback and neither sees the other."""
    lines = printed(run(hostile, attacker, LOOPBACK_SERVER + "\nkeep = socket.create_server(('127.0.0.1', 8766))")).splitlines()
    assert lines == ["{'localhost': '127.0.0.1', 'sandbox': '127.0.0.1'} b'pong:ping'", "DNS FAILED gaierror"]
    reach = """
import socket
try:
    socket.create_connection(('127.0.0.1', 8766), timeout=2).close()
    print('CONNECTED')
except OSError as e:
    print('FAILED', type(e).__name__)
"""
    assert printed(run(hostile, neighbour, reach)) == "FAILED ConnectionRefusedError\n"
    lines = printed(run(hostile, neighbour, LOOPBACK_SERVER)).splitlines()  # the same port, free here
    assert lines[0] == "{'localhost': '127.0.0.1', 'sandbox': '127.0.0.1'} b'pong:ping'"
    assert printed(run(hostile, attacker, "keep.close(); print('closed')")) == "closed\n"


# ---- writing outside /mnt/data -----------------------------------------------------------------

def test_writes_outside_mnt_data_fail(hostile, attacker):
    targets = ["/pwned", "/usr/pwned", "/usr/bin/python3", "/etc/pwned", "/etc/passwd", "/opt/codeinterp/kernel.py",
               "/opt/codeinterp/pwned", "/opt/venv/pwned", "/sessions/pwned", "/root/pwned", "/bin/pwned",
               "/etc/fonts/pwned", "/proc/sys/kernel/hostname"]
    code = PROBE + f"""
for path in {targets!r}:
    print(path, '=>', probe(path, 'w'))
print('/mnt/data =>', probe('/mnt/data/ok.txt', 'w'))
print('/tmp =>', probe('/tmp/ok.txt', 'w'))
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    for line in lines[:-2]:
        assert "=> DENIED" in line, line
    assert lines[-2:] == ["/mnt/data => WROTE", "/tmp => WROTE"]
    for host_path in ("/pwned", "/usr/pwned", "/etc/pwned", "/root/pwned", "/bin/pwned"):
        assert not os.path.exists(host_path)
    assert "pwned" not in (PROJECT / "src/codeinterp/sandbox/bwrap/kernel.py").read_text()[-50:]


def test_every_mount_but_the_sessions_own_is_read_only(hostile, attacker):
    # Read-only mounts alone (whatever the uid) keep the system as it is; the writable ones are the
    # session's own filesystems, and /dev and the emptied base site-packages, which are root's (the
    # uid drop keeps those: test_kernel_runs_unprivileged_with_seccomp).
    text = printed(run(hostile, attacker, "print(open('/proc/self/mountinfo').read())"))
    writable = set()
    for line in text.strip().splitlines():
        fields = line.split()
        if "rw" in fields[5].split(","):
            writable.add(fields[4])
    site_packages = {m for m in writable if m.endswith("/site-packages")}
    devices = {m for m in writable if m.startswith("/dev/") and m not in ("/dev/pts", "/dev/shm")}
    assert len(site_packages) <= 1
    assert devices <= {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}, devices
    assert writable - site_packages - devices == {"/mnt/data", "/tmp", "/dev", "/dev/shm", "/dev/pts", "/proc"}


# ---- links to the host in /mnt/data ------------------------------------------------------------

def test_planted_links_never_return_host_content(hostile, attacker):
    host_passwd = Path("/etc/passwd").read_bytes()
    code = """
import os
os.chdir('/mnt/data')
os.symlink('/etc/passwd', 'sym.txt')
os.symlink('/etc', 'etcdir')
os.symlink('/proc/1/root/etc/passwd', 'procsym.txt')
open('real.txt', 'w').write('mine')
os.link('real.txt', 'hard.txt')
try:
    os.link('/etc/passwd', 'hard-passwd.txt')
    print('HARDLINKED')
except OSError as e:
    print('hard link refused', e.errno)
os.makedirs('sub', exist_ok=True)
os.symlink('/etc/passwd', 'sub/inner.txt')
print(sorted(os.listdir('.')))
"""
    result = run(hostile, attacker, code)
    assert result.status == "ok", result.outputs
    names = [change.path for change in result.files_changed]
    assert "sym.txt" not in names and "procsym.txt" not in names and "sub/inner.txt" not in names
    assert "hard.txt" not in names and "real.txt" not in names  # two links to one inode: not copied out
    for name in ("sym.txt", "etcdir/passwd", "procsym.txt", "hard.txt", "real.txt", "hard-passwd.txt",
                 "sub/inner.txt", "../../etc/passwd", "/etc/passwd"):
        try:
            data = hostile.run(read_all(attacker, name))
        except Exception:
            continue
        assert data != host_passwd and b"root:x:0:0" not in data, name
    listed = hostile.run(attacker.list_files())
    assert {f.path for f in listed} <= {"hard-passwd.txt"}
    assert Path("/etc/passwd").read_bytes() == host_passwd


# ---- resource bombs ----------------------------------------------------------------------------

@pytest.mark.slow
def test_fork_bomb_is_held_by_the_pids_limit(hostile, attacker):
    code = """
import os, time
count = 0
errors = 0
for _ in range(100):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        count += 1
    except OSError:
        errors += 1
print(count, errors, flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    result = run(hostile, attacker, code, timeout=8)
    assert result.status in ("timeout", "killed")
    count, errors = map(int, printed(result).split()[:2])
    assert count < 64 and errors > 0
    assert len(os.listdir("/proc")) > 0 and subprocess.run(["true"]).returncode == 0
    # the session's processes are gone and it restarts
    again = run(hostile, attacker, "1+1")
    assert again.text.endswith("2\n")


@pytest.mark.slow
def test_memory_bomb_crashes_only_the_session(hostile, attacker):
    result = run(hostile, attacker, "blocks = []\nwhile True:\n    blocks.append(b'x' * (16 * 1024 * 1024))")
    assert result.status == "crashed", result.outputs
    assert any(o.kind == "notice" and "memory" in o.text for o in result.outputs), result.outputs
    again = run(hostile, attacker, "1+1")
    assert again.state_lost and again.text.endswith("2\n")


@pytest.mark.parametrize("path", ["/tmp", "/dev/shm", "/mnt/data"])
def test_filling_a_writable_directory_stops_at_its_cap(hostile, attacker, path):
    # Each is a memory-backed filesystem capped at 64 MB here; without its cap, 512 MB would be
    # written until the session's 256 MB of memory ran out and the kernel was killed.
    code = f"""
import errno, os
written = 0
chunk = b'x' * (1024 * 1024)
try:
    with open('{path}/fill', 'wb') as f:
        while written < 512:
            f.write(chunk)
            f.flush()
            written += 1
    print(written, None)
except OSError as e:
    print(written, errno.errorcode.get(e.errno))
os.remove('{path}/fill')
"""
    result = run(hostile, attacker, code, timeout=60)
    assert result.status == "ok", result.outputs
    written, error = printed(result).split()
    assert 32 <= int(written) <= 64 and error == "ENOSPC", (written, error)


def test_filling_mnt_data_with_many_files_leaves_the_neighbours_space(hostile, attacker, neighbour):
    code = """
import errno
written = 0
try:
    for i in range(64):  # 64 files of 8 MB: 512 MB, more than every session's space together
        with open(f'/mnt/data/part-{i}', 'wb') as f:
            f.write(b'x' * (8 * 1024 * 1024))
        written += 8
    print(written, None)
except OSError as e:
    print(written, errno.errorcode.get(e.errno))
"""
    result = run(hostile, attacker, code, timeout=60)
    written, error = printed(result).split()
    assert int(written) <= 64 and error == "ENOSPC"
    # the neighbour still has its own space, in the sandbox and through put_file
    done = run(hostile, neighbour, "open('/mnt/data/big', 'wb').write(b'y' * (32 * 1024 * 1024))")
    assert done.text == f"{32 * 1024 * 1024}\n", done.outputs
    hostile.run(neighbour.put_file("uploaded.bin", b"z" * (16 * 1024 * 1024)))
    assert len(hostile.run(read_all(neighbour, "uploaded.bin"))) == 16 * 1024 * 1024
    run(hostile, neighbour, "import os\nos.remove('/mnt/data/big')\nos.remove('/mnt/data/uploaded.bin')")
    # once closed, the session's filesystem is gone from the warm parent
    zygote = Path(hostile.backend.parent.session_root).parts[2]
    assert attacker.id in Path(f"/proc/{zygote}/mountinfo").read_text()
    hostile.run(attacker.close())
    deadline = time.monotonic() + 5
    while attacker.id in Path(f"/proc/{zygote}/mountinfo").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert attacker.id not in Path(f"/proc/{zygote}/mountinfo").read_text()


@pytest.mark.slow
def test_stdout_flood_is_capped_with_a_marker(hostile, attacker):
    code = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(4096):\n    sys.stdout.write(chunk)"  # 4 GB
    result = run(hostile, attacker, code, timeout=8)
    assert result.status in ("ok", "timeout", "killed")
    assert result.truncated
    streamed = sum(len(o.text) for o in result.outputs if o.kind == "stdout")
    assert streamed <= 1024 * 1024 + 65536
    assert any("truncated" in o.text for o in result.outputs if o.kind == "notice")
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


def test_writing_to_the_kernel_socket_directly_is_capped_too(hostile, attacker):
    # the output cap lives in the kernel, but code can bypass it by writing protocol lines to the socket
    code = """
import os, stat
fds = []
for name in os.listdir('/proc/self/fd'):
    try:
        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            fds.append(int(name))
    except OSError:
        pass
line = b'{"type": "stream", "name": "stdout", "text": "' + b'x' * (1 << 20) + b'"}\\n'
for fd in fds:
    for _ in range(64):  # 64 MB through a 1 MB cap
        os.write(fd, line)
print('done')
"""
    result = run(hostile, attacker, code, timeout=60)
    assert result.truncated
    assert sum(len(o.text) for o in result.outputs) <= 3 * 1024 * 1024
    assert any("truncated" in o.text for o in result.outputs if o.kind == "notice")
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


@pytest.mark.parametrize("garbage", ['{"type": "stream"}', '{"type": "display", "png": "!!x"}', '[1]',
                                     '{"type": "error", "traceback": 1}', 'not json'])
def test_garbage_on_the_kernel_socket_is_a_crash_not_a_server_error(hostile, attacker, garbage):
    code = f"""
import os, stat
for name in os.listdir('/proc/self/fd'):
    try:
        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            os.write(int(name), {garbage!r}.encode() + b'\\n')
    except OSError:
        pass
import time
time.sleep(1)
"""
    result = run(hostile, attacker, code, timeout=10)  # must not raise
    assert result.status == "crashed", result.outputs
    again = run(hostile, attacker, "1+1")
    assert again.state_lost and again.text.endswith("2\n")


def test_spinning_every_cpu_is_held_by_the_sessions_cpu_share(hostile, attacker):
    """Every spinning process is in the session's CPU group, whose share is the configured one (the
    neighbour's latency meanwhile is measured by benchmarks/sandbox_neighbour_latency.py)."""
    code = """
import multiprocessing, os
def spin(_):
    while True:
        pass
ctx = multiprocessing.get_context('fork')
with ctx.Pool(os.cpu_count() * 2) as pool:
    pool.map(spin, range(os.cpu_count() * 2))
"""
    future = asyncio.run_coroutine_threadsafe(attacker.execute(code, timeout=20), hostile.loop.loop)
    spinners = os.cpu_count() * 2
    pids = session_group("pids", attacker.id)
    cpu = session_group("cpu", attacker.id)
    deadline = time.monotonic() + 60
    while len((pids / "cgroup.procs").read_text().split()) <= spinners and time.monotonic() < deadline:
        time.sleep(0.05)
    processes = set((pids / "cgroup.procs").read_text().split())
    assert len(processes) > spinners  # the kernel and its pool
    assert processes <= set((cpu / "cgroup.procs").read_text().split())
    shares = hostile.settings.sandbox_cpu_shares
    if (cpu / "cpu.shares").exists():
        assert int((cpu / "cpu.shares").read_text()) == shares
    else:
        assert int((cpu / "cpu.weight").read_text()) == max(1, min(10000, shares * 100 // 1024))
    hostile.run(attacker.interrupt())
    assert future.result(120).status in ("error", "timeout", "killed")
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


def test_kill_all_only_kills_the_sessions_own_processes(hostile, attacker):
    # a host process running as the very uid the sandbox uses must survive kill(-1)
    victim = subprocess.Popen(["sleep", "60"], user=65534, group=65534)
    try:
        code = """
import os, signal, time
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
os.kill(-1, signal.SIGKILL)  # every process this one may signal, but itself
time.sleep(0.2)
print('child', os.waitpid(child, 0)[1] & 0x7f)
"""
        result = run(hostile, attacker, code, timeout=10)
        assert result.status in ("ok", "crashed"), result.outputs
        if result.status == "ok":
            assert printed(result) == "child 9\n"
        assert victim.poll() is None
        os.kill(os.getpid(), 0)
        assert run(hostile, attacker, "1+1").text.endswith("2\n")
    finally:
        victim.kill()
        victim.wait()


# ---- privileged operations ---------------------------------------------------------------------

def test_ptrace_mount_unshare_devices_and_cgroups_are_refused(hostile, attacker):
    code = """
import ctypes, os, errno
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return 'ALLOWED' if r == 0 else 'DENIED ' + errno.errorcode.get(ctypes.get_errno(), '?')
pid = os.fork()
if pid == 0:
    import time; time.sleep(5); os._exit(0)
print('ptrace', call('ptrace', 16, pid, None, None))  # PTRACE_ATTACH
os.kill(pid, 9); os.waitpid(pid, 0)
print('ptrace-traceme', call('ptrace', 0, 0, None, None))
print('mount', call('mount', b'none', b'/tmp', b'tmpfs', 0, None))
print('umount', call('umount2', b'/mnt/data', 2))
print('unshare-user', call('unshare', 0x10000000))
print('unshare-net', call('unshare', 0x40000000))
print('chroot', call('chroot', b'/tmp'))
print('setuid0', call('setuid', 0))
for path in ['/dev/sda', '/dev/mem', '/dev/kmsg', '/sys/fs/cgroup/memory/codeinterp/memory.limit_in_bytes',
             '/sys/fs/cgroup/pids/pids.max', '/proc/sysrq-trigger', '/proc/sys/vm/drop_caches']:
    try:
        with open(path, 'w') as f:
            f.write('1')
        print(path, 'ALLOWED')
    except OSError as e:
        print(path, 'DENIED', type(e).__name__)
print(sorted(os.listdir('/dev')))
"""
    result = run(hostile, attacker, code)
    lines = printed(result).splitlines()
    for line in lines[:-1]:
        assert "DENIED" in line, line
    devices = eval(lines[-1])
    assert not any(name.startswith(("sd", "nvme", "vd", "mem", "kmem", "port")) for name in devices), devices


def test_new_namespaces_by_clone_and_io_uring_are_refused(hostile, attacker):
    code = """
import ctypes, os, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SIGCHLD = 17
for name, flag in [('user', 0x10000000), ('mount', 0x00020000), ('pid', 0x20000000), ('net', 0x40000000)]:
    pid = libc.syscall(56, flag | SIGCHLD, 0, 0, 0, 0)  # clone
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        print('clone', name, 'ALLOWED')
    else:
        print('clone', name, 'DENIED', errno.errorcode.get(ctypes.get_errno()))
args = (ctypes.c_uint64 * 11)(0x10000000, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, 0)  # clone3, CLONE_NEWUSER
pid = libc.syscall(435, ctypes.byref(args), ctypes.sizeof(args))
if pid == 0:
    os._exit(0)
print('clone3', 'ALLOWED' if pid > 0 else 'DENIED ' + str(errno.errorcode.get(ctypes.get_errno())))
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 8, params)  # io_uring_setup
print('io_uring', 'ALLOWED' if fd >= 0 else 'DENIED ' + str(errno.errorcode.get(ctypes.get_errno())))
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    assert len(lines) == 6, lines
    for line in lines:
        assert "DENIED" in line, line


def test_kernel_runs_unprivileged_with_seccomp(hostile, attacker, neighbour):
    code = "print(open('/proc/self/status').read())\nimport os\nprint('IDS', os.getuid(), os.getgid(), os.getgroups())"
    text = printed(run(hostile, attacker, code))
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    uid = attacker.uid
    assert uid != neighbour.uid and uid >= hostile.settings.sandbox_uid_base
    assert fields["Uid"].split() == [str(uid)] * 4
    assert fields["Gid"].split() == [str(uid)] * 4
    assert int(fields["CapEff"].strip(), 16) == 0
    assert int(fields["CapPrm"].strip(), 16) == 0
    assert int(fields["CapInh"].strip(), 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    assert f"IDS {uid} {uid} []" in text


# ---- the terminal --------------------------------------------------------------------------------

def test_no_terminal_is_reachable_and_input_cannot_be_pushed(hostile, attacker):
    code = """
import errno, fcntl, os, termios
def attempt(what, call):
    try:
        call()
        return what + ' ALLOWED'
    except OSError as e:
        return what + ' DENIED ' + str(errno.errorcode.get(e.errno))
print(attempt('/dev/tty', lambda: os.close(os.open('/dev/tty', os.O_RDWR))))
print('console', os.path.exists('/dev/console'))
print('session', os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())
print('ttys', [fd for fd in map(int, os.listdir('/proc/self/fd')) if os.path.exists(f'/proc/self/fd/{fd}') and os.isatty(fd)])
master, slave = os.openpty()  # a terminal of its own: pushing input into it is refused all the same
print(attempt('TIOCSTI', lambda: fcntl.ioctl(slave, termios.TIOCSTI, b'x')))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
high = libc.ioctl(slave, ctypes.c_ulong((1 << 32) | termios.TIOCSTI), ctypes.c_char_p(b'x'))
print('TIOCSTI-high-bits', 'ALLOWED' if high == 0 else 'DENIED ' + str(errno.errorcode.get(ctypes.get_errno())))
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    assert lines[0] in ("/dev/tty DENIED ENXIO", "/dev/tty DENIED ENOENT"), lines
    assert lines[1:4] == ["console False", "session True True", "ttys []"], lines
    assert lines[4] == "TIOCSTI DENIED EPERM" and lines[5] == "TIOCSTI-high-bits DENIED EPERM", lines


TERMINAL_ATTACK = """
import fcntl, os, termios
def inject(fd, text):
    for ch in text:
        fcntl.ioctl(fd, termios.TIOCSTI, ch.encode())
word = 'INJ' + 'ECTED'
results = []
terminals = [f'/proc/self/fd/{fd}' for fd in range(256) if os.path.exists(f'/proc/self/fd/{fd}') and os.isatty(fd)]
for path in ['/dev/tty', '/dev/console'] + terminals:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        results.append(path + ' open-failed')
        continue
    for name, call in [('write', lambda: os.write(fd, ('TTY-' + word + '-WRITE').encode())),
                       ('inject', lambda: inject(fd, 'echo ' + word + '-LINE\\n'))]:
        try:
            call()
            results.append(path + ' ' + name + '-done')
        except OSError as e:
            results.append(path + ' ' + name + '-failed')
print(results)
"""


def test_sandbox_code_cannot_reach_the_operators_terminal(tmp_path):
    """`codeinterp exec` run from an interactive shell: the code tries to write to, and push a
    command line into, the terminal; the shell afterwards reads what is typed."""
    import pty
    import select

    script = tmp_path / "attack.py"
    script.write_text(TERMINAL_ATTACK)
    cli = Path(os.sys.executable).parent / "codeinterp"
    env = {**os.environ, "CODEINTERP_DATA_DIR": str(tmp_path / "data"), "CODEINTERP_SANDBOX_WARM_SESSIONS": "0"}
    pid, master = pty.fork()
    if pid == 0:
        os.execvpe("bash", ["bash", "-c", f"{cli} exec {script}; read -t 3 line; echo \"AFTER[$line]\""], env)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    assert "AFTER[]" in text, text  # nothing was typed into the shell
    assert "INJECTED" not in text, text  # nothing reached the terminal: neither written nor echoed
    assert "write-done" not in text and "inject-done" not in text, text


# ---- signals and processes across sessions ----------------------------------------------------

def test_signals_and_priorities_stay_within_the_session(hostile, attacker, neighbour):
    hostile.execute(neighbour, "kept = 'still here'")
    neighbour_pid = neighbour.kernel.pid
    code = """
import os, signal, time
print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())
for which, who in [(os.PRIO_PGRP, 0), (os.PRIO_USER, os.getuid()), (os.PRIO_USER, 65534)]:
    try:
        os.setpriority(which, who, 19)
    except OSError:
        pass
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
for signum in (signal.SIGSTOP, signal.SIGKILL):
    os.kill(0, signum)  # the whole process group (the kernel, PID 1 of its namespace, ignores both)
print('child', os.waitpid(child, 0)[1] & 0x7f)
"""
    result = run(hostile, attacker, code, timeout=10)
    assert printed(result) == "True True\nchild 9\n", result.outputs
    assert os.getpriority(os.PRIO_PROCESS, neighbour_pid) == 0
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == 0
    assert "State:\tS" in Path(f"/proc/{neighbour_pid}/status").read_text()  # not stopped
    answer = hostile.execute(neighbour, "kept")
    assert answer.text == "'still here'\n" and not answer.state_lost
    assert neighbour.kernel.pid == neighbour_pid


def test_a_dead_kernels_pid_taken_by_another_process_is_never_signalled(hostile, attacker):
    """The server keeps a kernel's PID; once the kernel is gone another process may get it. Here a
    host process is given that PID on purpose (ns_last_pid), then the session interrupts and closes."""
    run(hostile, attacker, "1+1")
    old_pid = attacker.kernel.pid
    os.kill(old_pid, 9)  # the kernel dies (as by the OOM killer, say)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{old_pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{old_pid}")
    victim = None
    for _ in range(20):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(old_pid - 1))
        candidate = subprocess.Popen(["sleep", "60"])
        if candidate.pid == old_pid:
            victim = candidate
            break
        candidate.kill()
        candidate.wait()
    if victim is None:
        pytest.skip("could not give the dead kernel's PID to a new process")
    try:
        hostile.run(attacker.interrupt())
        result = run(hostile, attacker, "1+1")  # finds the kernel gone, restarts it
        assert result.text.endswith("2\n") and result.state_lost
        hostile.run(attacker.close())
        time.sleep(0.2)
        assert victim.poll() is None, "the server signalled a process that was not its kernel"
    finally:
        victim.kill()
        victim.wait()


def test_sessions_cannot_see_or_open_each_others_terminals(hostile, attacker, neighbour):
    opened = hostile.execute(neighbour, "import os\npty_master, pty_slave = os.openpty()\n"
                                        "os.write(pty_master, b'NEIGHBOUR-TTY-SECRET\\n')\nos.ttyname(pty_slave)")
    assert opened.text.startswith("'/dev/pts/"), opened.outputs
    code = """
import os
print(sorted(os.listdir('/dev/pts')))
found = []
for n in range(64):
    try:
        fd = os.open(f'/dev/pts/{n}', os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        found.append(n)
        os.close(fd)
    except OSError:
        pass
print(found)
"""
    listing, found = printed(run(hostile, attacker, code)).splitlines()
    assert listing == "['ptmx']" and found == "[]"
    assert hostile.execute(neighbour, "os.read(pty_slave, 100)").text == "b'NEIGHBOUR-TTY-SECRET\\n'\n"


def test_per_user_kernel_budgets_are_the_sessions_own(hostile, attacker, neighbour):
    """inotify instances and POSIX message queue bytes are counted per uid by the kernel: a session
    that takes all of them takes them from itself only, not from its neighbour nor from the host."""
    exhaust = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
held_inotify, held_queues = [], []
while len(held_inotify) < 100000:
    fd = libc.inotify_init()
    if fd < 0:
        break
    held_inotify.append(fd)
while len(held_queues) < 100000:
    q = libc.mq_open(f'/q{len(held_queues)}'.encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
    if q < 0:
        break
    held_queues.append(q)
print(len(held_inotify), len(held_queues))
"""
    inotify_count, queue_count = map(int, printed(run(hostile, attacker, exhaust)).split())
    assert 0 < inotify_count < 100000 and 0 < queue_count < 100000
    probe = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
q = libc.mq_open(b'/neighbour', os.O_CREAT | os.O_RDWR, 0o600, None)
print(fd >= 0, q >= 0)
"""
    assert hostile.execute(neighbour, probe).text == "True True\n"
    # the host's nobody (a system interpreter it may run: the venv's lies under /root)
    host = subprocess.run(["/usr/bin/python3", "-c", "import ctypes\nprint(ctypes.CDLL(None).inotify_init() >= 0)"],
                          user=65534, group=65534, capture_output=True, text=True, timeout=30)
    assert host.stdout == "True\n", host.stderr


def test_only_local_ip_and_routing_sockets_can_be_made(hostile, attacker):
    code = """
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def make(family, kind, proto=0):
    fd = libc.socket(ctypes.c_long(family), kind, proto)
    if fd < 0:
        return 'DENIED ' + str(errno.errorcode.get(ctypes.get_errno()))
    libc.close(fd)
    return 'ALLOWED'
for name, family, kind, proto in [('vsock', 40, 1, 0), ('packet', 17, 3, 0), ('alg', 38, 5, 0), ('key', 15, 3, 2),
                                  ('bluetooth', 31, 3, 1), ('can', 29, 3, 1), ('rds', 21, 5, 0), ('tipc', 30, 5, 0),
                                  ('xdp', 44, 3, 0), ('netlink-uevent', 16, 3, 15), ('netlink-audit', 16, 3, 9),
                                  ('netlink-diag', 16, 3, 4), ('vsock-high-bits', (1 << 32) | 40, 1, 0)]:
    print(name, make(family, kind, proto))
print('unix', make(1, 1), 'inet', make(2, 1), 'inet6', make(10, 2), 'netlink-route', make(16, 3, 0))
try:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, 5000))
    print('vsock bound')
except OSError as e:
    print('vsock', type(e).__name__)
"""
    lines = printed(run(hostile, attacker, code)).splitlines()
    for line in lines[:-2]:
        assert line.endswith("DENIED EPERM"), line
    assert lines[-2] == "unix ALLOWED inet ALLOWED inet6 ALLOWED netlink-route ALLOWED"
    assert lines[-1] == "vsock PermissionError"


# ---- what the server reads from a kernel -------------------------------------------------------

SOCKET_FDS = """
import os, stat
sockets = []
for name in os.listdir('/proc/self/fd'):
    try:
        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            sockets.append(int(name))
    except OSError:
        pass
"""


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


class PeakMemory:
    """How far this process's resident memory rose above where it started, at its peak."""

    def __enter__(self):
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current size
        self.start = rss_mb()
        return self

    def __exit__(self, *exc):
        self.growth_mb = rss_mb("VmHWM") - self.start
        return False


@pytest.mark.parametrize("line", [
    '{"type": "notice", "text": "PAD"}',
    '{"type": "whatever", "pad": "PAD"}',
    '{"type": "stream", "name": "stdout", "text": "x", "pad": "PAD"}',
    '{"type": "done", "status": "ok", "pad": "PAD"}',
], ids=["notice", "unknown-kind", "extra-key", "done"])
def test_every_byte_a_kernel_sends_counts_against_its_output_cap(hostile, attacker, line):
    code = SOCKET_FDS + f"""
line = {line!r}.replace('PAD', 'x' * (1 << 20)).encode() + b'\\n'
for fd in sockets:
    for _ in range(200):  # 200 MB through a 1 MB cap
        os.write(fd, line)
"""
    with PeakMemory() as memory:
        result = run(hostile, attacker, code, timeout=30)
    kept = sum(len(o.text) + len(o.png or b"") for o in result.outputs)
    assert kept <= wire_budget(attacker.limits) + 1024, kept  # two cells' output cap and the protocol's
    assert memory.growth_mb < 64
    assert result.status in ("crashed", "ok") and (result.truncated or result.status == "ok")
    # a forged end of a cell names no execution the kernel was given: the flood cannot end the next
    # cells either, it runs them past their budget and the kernel is replaced
    answers = [run(hostile, attacker, "1+1").text for _ in range(2)]
    assert answers[-1].endswith("2\n"), answers


def test_nothing_is_read_from_an_idle_kernel(hostile, attacker):
    """Bytes a kernel writes between executions stay in its own socket, not in the server."""
    code = SOCKET_FDS + """
import threading, time
def flood():
    time.sleep(0.5)
    chunk = b'x' * (1 << 20)
    for _ in range(200):
        for fd in sockets:
            os.write(fd, chunk)
threading.Thread(target=flood, daemon=True).start()
"""
    assert run(hostile, attacker, code).status == "ok"
    with PeakMemory() as memory:
        time.sleep(3)
    assert memory.growth_mb < 32
    after = run(hostile, attacker, "1+1")  # those bytes are this execution's: garbage past its cap
    assert after.status == "crashed"
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


@pytest.mark.parametrize("crafted", ["long-lines", "deep-nesting"])
def test_crafted_lines_cost_the_server_a_bounded_amount(hostile, attacker, crafted):
    payload, times = {"long-lines": ("b'{\"type\": \"stream\", \"name\": \"stdout\", \"text\": \"' + b'x' * (60 << 20) + b'\"}\\n'", 4),
                      "deep-nesting": ("b'[' * (8 << 20) + b'\\n'", 1)}[crafted]
    code = SOCKET_FDS + f"""
data = {payload}
for fd in sockets:
    for _ in range({times}):
        os.write(fd, data)
"""
    with PeakMemory() as memory:
        result = run(hostile, attacker, code, timeout=30)
    assert memory.growth_mb < 64
    assert result.status == "crashed"
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


def test_a_kernel_that_stops_reading_cannot_hold_an_execution(hostile, attacker):
    """The code of the next execution is larger than the socket's buffers, and the kernel stopped
    reading between executions: sending it counts against the timeout like the rest."""
    stop_later = """
import re, threading, time
def hold_the_interpreter():  # the regular expression engine keeps the GIL: the kernel's loop stops
    time.sleep(0.5)
    open('/tmp/holding', 'w').close()
    re.match(r'(x+x+)+y', 'x' * 64)
threading.Thread(target=hold_the_interpreter, daemon=True).start()
"""
    assert run(hostile, attacker, stop_later).status == "ok"
    holding = Path(f"/proc/{attacker.kernel.pid}/root/tmp/holding")
    deadline = time.monotonic() + 60
    while not holding.exists() and time.monotonic() < deadline:  # the kernel's loop has stopped
        time.sleep(0.02)
    assert holding.exists()
    big = "# " + "x" * (16 << 20) + "\n1+1"
    result = hostile.run(attacker.execute(big, timeout=2), timeout=60)
    assert result.status == "killed", result.outputs
    assert run(hostile, attacker, "1+1").text.endswith("2\n")


# ---- bad data ------------------------------------------------------------------------------------

def test_text_that_is_not_unicode_keeps_the_cells_other_outputs(hostile, attacker):
    result = run(hostile, attacker, "print('before')\nprint('\\udcff')\nprint('after')\n"
                                    "open(b'/mnt/data/caf\\xe9.txt', 'wb').write(b'data')\n'\\ud800' + 'x'")
    assert result.status == "ok", result.outputs
    assert printed(result) == "before\n?\nafter\n"
    assert [o.text for o in result.outputs if o.kind == "result"] == ["'\\ud800x'"]  # repr escapes it
    assert len(result.files_changed) == 1
    name = result.files_changed[0].path
    assert name.encode("utf-8", "surrogateescape") == b"caf\xe9.txt"
    assert hostile.run(read_all(attacker, name)) == b"data"


def test_files_vanishing_while_the_directory_is_read_lose_nothing(hostile, attacker):
    churn = """
import os, threading, time
def churn():
    end = time.time() + 3
    n = 0
    while time.time() < end:
        path = f'/mnt/data/churn-{n % 50}'
        open(path, 'w').write('x')
        os.remove(path)
        n += 1
threading.Thread(target=churn, daemon=True).start()
"""
    assert run(hostile, attacker, churn).status == "ok"
    for n in range(20):
        result = run(hostile, attacker, f"open('/mnt/data/kept-{n}.txt', 'w').write('x')\nprint({n})")
        assert result.status == "ok" and printed(result) == f"{n}\n", result.outputs
        assert f"kept-{n}.txt" in [change.path for change in result.files_changed]


def test_a_file_removed_between_listing_and_stat_is_skipped(tmp_path, monkeypatch):
    from codeinterp.sandbox.bwrap import datadir

    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    real_scandir = os.scandir

    def scandir_then_remove(fd):
        listing = list(real_scandir(fd))
        os.remove(tmp_path / "a.txt")

        class Listing(list):
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False
        return Listing(listing)

    monkeypatch.setattr(datadir.os, "scandir", scandir_then_remove)
    assert set(datadir.snapshot(tmp_path)) == {"b.txt"}


def test_each_session_draws_its_own_random_numbers(hostile, attacker, neighbour):
    code = "import numpy, random, tempfile\nprint(numpy.random.rand(), random.random(), next(tempfile._get_candidate_names()))"
    mine = printed(run(hostile, attacker, code))
    theirs = printed(hostile.execute(neighbour, code))
    fresh = hostile.session()
    try:
        third = printed(hostile.execute(fresh, code))
    finally:
        hostile.run(fresh.close())
    for a, b in [(mine, theirs), (mine, third), (theirs, third)]:
        assert all(x != y for x, y in zip(a.split(), b.split())), (a, b)


def test_mount_table_shows_no_other_session_and_no_server_data(hostile, attacker, neighbour):
    text = printed(run(hostile, attacker, "print(open('/proc/self/mountinfo').read())"))
    assert neighbour.id not in text and attacker.id not in text
    assert str(hostile.settings.data_dir) not in text
    assert " /sessions " not in text


@pytest.mark.slow
def test_all_sandboxes_together_stay_within_the_total_memory(tmp_path):
    from tests.sandbox.conftest import SandboxHarness, session_group

    harness = SandboxHarness(tmp_path, sandbox_warm_sessions=0, sandbox_memory_mb=256, sandbox_total_memory_mb=320,
                             sandbox_exec_timeout_seconds=30)
    try:
        group = harness.backend.parent_group
        limit_file = group.dirs[0] / ("memory.limit_in_bytes" if group.version == 1 else "memory.max")
        assert int(limit_file.read_text()) == 320 * 1024 * 1024
        sessions = [harness.session() for _ in range(3)]
        hold = "import numpy\nblock = numpy.ones(200 * 1024 * 1024 // 8)\nprint('holding')"
        for session in sessions[:2]:
            harness.execute(session, hold)
        # 2 x 200 MB cannot both be held within 320 MB: the kernel killed one of them (never the host)
        held = [harness.execute(session, "print(len(block))") for session in sessions[:2]]
        assert sum(printed(result) == f"{200 * 1024 * 1024 // 8}\n" for result in held) <= 1, held
        assert any(result.state_lost for result in held), held
        assert harness.execute(sessions[2], "1+1").text.endswith("2\n")
    finally:
        harness.close()

"""`codeinterp exec` and `codeinterp doctor`, run as the commands a user types (real sandboxes)."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeinterp.config import Settings
from codeinterp.sandbox.bwrap.backend import UID_SPAN

PROJECT = Path(__file__).resolve().parents[2]
CLI = [str(Path(sys.executable).parent / "codeinterp")]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def codeinterp(*args: str, stdin: str | None = None, tmp_path: Path, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CODEINTERP_")}, **(env or {})}
    env["CODEINTERP_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(CLI + list(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=tmp_path)


def test_exec_from_a_file_prints_stdout_stderr_and_the_last_value(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello from the sandbox')\nprint('a warning', file=sys.stderr)\n6 * 7\n")
    done = codeinterp("exec", str(script), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from the sandbox\n42\n"
    assert "a warning" in done.stderr and "hello" not in done.stderr


def test_exec_from_stdin_runs_isolated(tmp_path):
    code = "import os\nprint(os.getcwd(), os.getuid())\nprint(os.path.exists('/work'))\n"
    done = codeinterp("exec", "-", stdin=code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    cwd_uid, host_path = done.stdout.splitlines()
    cwd, uid = cwd_uid.split()
    base = Settings().sandbox_uid_base
    assert (cwd, host_path) == ("/mnt/data", "False")
    assert base <= int(uid) < base + UID_SPAN  # a session's own uid, not root's nor a host user's


def test_exec_without_a_file_argument_reads_stdin(tmp_path):
    done = codeinterp("exec", stdin="print(sum(range(10)))", tmp_path=tmp_path)
    assert (done.returncode, done.stdout) == (0, "45\n"), done.stderr


def test_exec_exits_1_when_the_code_raises(tmp_path):
    done = codeinterp("exec", "-", stdin="print('before')\nraise ValueError('boom')\n", tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert "ValueError" in done.stderr and "boom" in done.stderr and "Traceback" in done.stderr


def test_exec_exits_124_on_timeout(tmp_path):
    done = codeinterp("exec", "-", "--timeout", "1", stdin="print('started', flush=True)\nimport time\n"
                      "time.sleep(30)\nprint('never')\n", tmp_path=tmp_path)
    assert done.returncode == 124, (done.stdout, done.stderr)
    assert done.stdout == "started\n"
    assert "KeyboardInterrupt" in done.stderr and "timeout" in done.stderr


def test_exec_exits_124_when_the_code_ignores_the_interrupt(tmp_path):
    code = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('stubborn', flush=True)\n"
            "while True:\n    time.sleep(0.1)\n")
    done = codeinterp("exec", "-", "--timeout", "1", stdin=code, tmp_path=tmp_path)
    assert done.returncode == 124, (done.stdout, done.stderr)
    assert done.stdout == "stubborn\n"
    assert "killed" in done.stderr


def test_exec_of_a_missing_file_fails_clearly(tmp_path):
    done = codeinterp("exec", str(tmp_path / "nope.py"), tmp_path=tmp_path)
    assert done.returncode not in (0, 124)
    assert "nope.py" in done.stderr and "Traceback" not in done.stderr


def test_exec_files_out_saves_images_and_created_files(tmp_path):
    code = """
import matplotlib.pyplot as plt
import pandas as pd
frame = pd.DataFrame({"x": [1, 2, 3], "y": [1, 4, 9]})
frame.to_csv("/mnt/data/squares.csv", index=False)
plt.plot(frame.x, frame.y)
plt.title("squares")
plt.show()
print("done")
"""
    out = tmp_path / "out"
    done = codeinterp("exec", "-", "--files-out", str(out), stdin=code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    image = out / "image-1.png"
    assert image.read_bytes().startswith(PNG_MAGIC)
    assert len(image.read_bytes()) > 1000
    rows = list(csv.DictReader(io.StringIO((out / "squares.csv").read_text())))
    assert rows == [{"x": "1", "y": "1"}, {"x": "2", "y": "4"}, {"x": "3", "y": "9"}]
    assert sorted(p.name for p in out.iterdir()) == ["image-1.png", "squares.csv"]


def test_exec_files_out_never_copies_links_to_host_files(tmp_path):
    code = "import os\nos.symlink('/etc/passwd', '/mnt/data/passwd')\nopen('/mnt/data/mine.txt', 'w').write('ok')\n"
    out = tmp_path / "out"
    done = codeinterp("exec", "-", "--files-out", str(out), stdin=code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "ok"


@pytest.fixture(scope="module")
def doctor_output(tmp_path_factory):
    return codeinterp("doctor", tmp_path=tmp_path_factory.mktemp("doctor"))


def test_doctor_prints_each_isolation_feature(doctor_output):
    text = doctor_output.stdout
    for feature in ("bubblewrap", "namespaces", "cgroups", "seccomp", "no_new_privs"):
        lines = [line for line in text.splitlines() if feature in line.split()]
        assert lines, (feature, text)
        assert lines[0].split()[0] == "OK", lines[0]  # this host (root, bwrap, cgroup v1) gives every one
    bwrap_line = next(line for line in text.splitlines() if "bubblewrap" in line.split())
    version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    assert version in bwrap_line
    assert "v1" in text or "v2" in text
    assert "CODEINTERP_SANDBOX_UNSAFE" in text
    assert doctor_output.returncode == 0, text + doctor_output.stderr


def test_doctor_reports_the_protections_a_probe_session_shows(doctor_output):
    text = doctor_output.stdout
    assert "Protections, as a probe session sees them:" in text
    for protection in ("terminal", "process_group", "session_uid", "socket_families", "byte_budgets"):
        lines = [line for line in text.splitlines() if protection in line.split()]
        assert lines and lines[0].split()[0] == "OK", (protection, text)
    assert "TIOCSTI refused (EPERM)" in text and "none between executions" in text


def test_doctor_prints_the_sandbox_package_versions(doctor_output):
    text = doctor_output.stdout
    python = PROJECT / ".sandbox-env" / "bin" / "python"
    for name in ("numpy", "pandas", "matplotlib", "scikit-learn", "pyarrow"):
        real = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                              capture_output=True, text=True).stdout.strip()
        assert real
        assert any(line.split() == [name, real] for line in text.splitlines()), (name, real, text)
    packages = text.split("Sandbox packages")[1].split("\n\n")[0]
    assert "MISSING" not in packages


def test_doctor_lists_the_system_programs_and_offline_data(doctor_output):
    text = doctor_output.stdout
    programs = text.split("System programs and fonts")[1].split("\n\n")[0].splitlines()[1:]
    wanted = [line.split()[0] for line in (PROJECT / "src/codeinterp/sandbox/debian-packages.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert [line.split()[1] for line in programs] == wanted
    assert all(line.split()[0] == "OK" for line in programs), programs  # setup installed each on this host
    data = text.split("Offline data")[1].splitlines()[1:]
    assert any("matplotlib fonts" in line and line.split()[0] == "OK" for line in data), data
    status = {line.split()[2]: line.split()[0] for line in data if line.startswith("  ") and "nltk" in line}
    status["en_core_web_sm"] = next(line.split()[0] for line in data if "en_core_web_sm" in line)
    # setup bakes these from pinned packages; the tagger and omw-1.4 are in no registry it reaches
    assert status == {"punkt_tab": "OK", "stopwords": "OK", "wordnet": "OK", "vader_lexicon": "OK",
                      "averaged_perceptron_tagger_eng": "MISSING", "omw-1.4": "MISSING", "en_core_web_sm": "OK"}, data


def test_doctor_tells_what_is_lost_without_bubblewrap(tmp_path):
    # a PATH without bwrap: the host looks like a laptop without bubblewrap
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEINTERP_")}
    env["PATH"] = str(tmp_path)
    done = subprocess.run(CLI + ["doctor"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if "bubblewrap" in line.split())
    assert line.split()[0] == "MISSING"
    assert "without it" in done.stdout
    assert "REFUSES" in done.stdout and "CODEINTERP_SANDBOX_UNSAFE=1" in done.stdout


def test_exec_exits_1_with_a_notice_when_the_kernel_crashes(tmp_path):
    done = codeinterp("exec", "-", stdin="print('going', flush=True)\nimport os\nos._exit(3)\n", tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "going\n"
    assert "kernel died" in done.stderr


def test_exec_without_a_data_dir_leaves_nothing_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEINTERP_")}
    done = subprocess.run(CLI + ["exec", "-"], input="open('/mnt/data/x', 'w').write('x')\n1+1", capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "2\n", done.stderr
    assert list(tmp_path.iterdir()) == []


def test_doctor_says_unsafe_mode_runs_without_isolation(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEINTERP_")}
    env.update(PATH=str(tmp_path), CODEINTERP_SANDBOX_UNSAFE="1")
    done = subprocess.run(CLI + ["doctor"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0
    assert "UNSAFE" in done.stdout and "WITHOUT isolation" in done.stdout

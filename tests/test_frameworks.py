"""The frameworks people drive the Assistants API with, against the real server, real sandboxes and
the scripted upstream model: LangChain's OpenAIAssistantRunnable (langchain-classic) and
OpenAIAssistantV2Runnable (langchain-community), and LlamaIndex's OpenAIAssistantAgent
(llama-index-agent-openai). Each runs a user's flow with a file in and a file out, as the framework
does it by default, and the test checks what the framework hands the user: the answer text, the
generated file's id and its bytes.

Each framework runs in its own environment, as a user's separate process (tests/frameworks/*_flow.py):
.venv-frameworks/langchain and .venv-frameworks/llamaindex, with the versions pinned in
tests/frameworks/*.txt, made by scripts/setup.sh --test (or here, on first use). LlamaIndex's agent
needs openai<2, older than the tests' own SDK; LangChain's runnables are kept apart so that their
dependencies never move the server's.
"""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_runs import MODEL, python

ROOT = Path(__file__).resolve().parents[1]
FLOWS = Path(__file__).parent / "frameworks"
DATA = b"n\n1\n2\n3\n"
SQUARES = b"n,square\n1,1\n2,4\n3,9\n"
CODE = ("import pandas as pd\n"
        "df = pd.read_csv('/mnt/data/numbers.csv')\n"
        "df.assign(square=df.n ** 2).to_csv('/mnt/data/squares.csv', index=False)")
REPLY = "Here is the table: [squares.csv](sandbox:/mnt/data/squares.csv)"

# A framework's environment made here on first use (pip) takes minutes, within the test's timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def framework_python(name: str) -> Path:
    """The python of .venv-frameworks/NAME, made from tests/frameworks/NAME.txt if it is missing."""
    venv = ROOT / ".venv-frameworks" / name
    python_bin = venv / "bin" / "python"
    if not python_bin.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python_bin), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(FLOWS / f"{name}.txt")], check=True)
    return python_bin


def run_flow(server, upstream, tmp_path, name: str, *args: str) -> dict:
    """Script the model (read the user's numbers.csv, write squares.csv, link it), run the
    framework's flow, and return what it printed."""
    upstream.reset()
    upstream.script([python(CODE), {"text": REPLY}])
    data = tmp_path / "numbers.csv"
    data.write_bytes(DATA)
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=server.api_key)
    done = subprocess.run([str(framework_python(name)), str(FLOWS / f"{name}_flow.py"), *args, str(data), MODEL],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_answer(client, result: dict, attached_with: list[str]) -> None:
    """The framework handed back the reply and the generated file (its id and bytes); the user's
    file was attached as the framework sends it and read from /mnt/data."""
    assert result["output"] == REPLY
    messages = client.beta.threads.messages.list(result["thread_id"], order="asc").data
    answer = messages[-1]
    generated = answer.content[-1].text.annotations[0].file_path.file_id
    assert result["files"] == [generated]
    assert base64.b64decode(result["contents"][generated]) == SQUARES
    assert client.files.content(generated).read() == SQUARES
    assert client.files.retrieve(generated).purpose == "assistants_output"
    attached = [a for m in messages if m.role == "user" for a in m.attachments or []]
    assert [[t.type for t in a.tools] for a in attached] == [attached_with]


@pytest.mark.parametrize("version, attached_with", [
    ("v1", ["code_interpreter"]),  # OpenAIAssistantRunnable: attachments as the caller gives them
    ("v2", ["file_search", "code_interpreter"]),  # OpenAIAssistantV2Runnable's file_ids
])
def test_langchain_assistant_runnable(client, server, upstream, tmp_path, version, attached_with):
    result = run_flow(server, upstream, tmp_path, "langchain", version)
    check_answer(client, result, attached_with)
    attached = client.beta.threads.messages.list(result["thread_id"], order="asc").data[0].attachments
    assert attached[0].file_id == result["input_file_id"]


def test_llamaindex_openai_assistant_agent(client, server, upstream, tmp_path):
    result = run_flow(server, upstream, tmp_path, "llamaindex")
    check_answer(client, result, ["file_search"])  # add_message(file_ids=...)'s default
    messages = client.beta.threads.messages.list(result["thread_id"], order="asc").data
    assert [m.role for m in messages] == ["user", "user", "assistant"]
    assert messages[0].attachments[0].file_id == result["input_file_ids"][0]

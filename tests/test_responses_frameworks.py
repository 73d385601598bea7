"""Agent frameworks that drive the Responses API's `code_interpreter` tool through the official
SDK, against the real server, real sandboxes and the scripted upstream model, as a new user would
run them: the OpenAI Agents SDK (`openai-agents`, CodeInterpreterTool, Runner.run and
Runner.run_streamed), pydantic-ai (CodeExecutionTool with OpenAIResponsesModel) and Microsoft's
Agent Framework (its OpenAI Responses client with a hosted code interpreter tool).

Each framework runs as a user's separate process (tests/frameworks/*_flow.py, printing one JSON
line) in .venv-responses-frameworks/, with the versions pinned in
tests/frameworks/responses-requirements.txt, made by scripts/setup.sh --test (or here, on first
use): their dependencies never move the server's. In every flow the model computes something,
writes a file and answers with a `sandbox:/mnt/data/...` link; the test checks what the framework
hands the user: the final text and, where the framework exposes them, the code call, its logs and
the container file citation.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_runs import MODEL, python

ROOT = Path(__file__).resolve().parents[1]
FLOWS = Path(__file__).parent / "frameworks"
VENV = ROOT / ".venv-responses-frameworks"
CODE = ("total = sum(n * n for n in range(1, 11))\n"
        "open('/mnt/data/squares.txt', 'w').write(f'{total}\\n')\n"
        "print(total)")
LINK = "sandbox:/mnt/data/squares.txt"
REPLY = f"The sum of the squares is 385: [squares.txt]({LINK})"

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def frameworks_python() -> Path:
    """The python of .venv-responses-frameworks, made from the pinned requirements if missing."""
    python_bin = VENV / "bin" / "python"
    if not python_bin.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python_bin), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(FLOWS / "responses-requirements.txt")], check=True)
    return python_bin


def run_flow(python_bin: Path, server, name: str) -> dict:
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=server.api_key, MODEL=MODEL)
    done = subprocess.run([str(python_bin), str(FLOWS / f"{name}_flow.py")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr + server.log()[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_citation(annotations: list[dict], container_id: str) -> None:
    (citation,) = annotations
    assert citation["type"] == "container_file_citation" and citation["filename"] == "squares.txt"
    assert citation["container_id"] == container_id and citation["file_id"].startswith("cfile_")
    assert REPLY[citation["start_index"]:citation["end_index"]] == LINK


def test_openai_agents_sdk_run_and_run_streamed(frameworks_python, server, client, upstream):
    upstream.reset()
    upstream.script([python(CODE), {"text": REPLY}, python(CODE), {"text": REPLY}])
    result = run_flow(frameworks_python, server, "openai_agents")
    for mode in ("run", "streamed"):
        got = result[mode]
        assert got["final_output"] == REPLY
        (call,) = got["calls"]
        assert call["code"] == CODE and call["status"] == "completed"
        assert [logs.strip() for logs in call["logs"]] == ["385"]
        check_citation(got["annotations"], call["container_id"])
    assert result["streamed"]["events"][0] == "response.created"
    assert result["streamed"]["events"][-1] == "response.completed"
    assert "response.code_interpreter_call_code.delta" in result["streamed"]["events"]


def test_pydantic_ai_code_execution_tool(frameworks_python, server, upstream):
    upstream.reset()
    upstream.script([python(CODE), {"text": REPLY}, python(CODE), {"text": REPLY}])
    result = run_flow(frameworks_python, server, "pydantic_ai")
    for mode in ("run", "streamed"):
        got = result[mode]
        assert got["output"] == REPLY
        (call,) = got["calls"]
        assert call["tool_name"] == "code_execution" and call["args"]["code"] == CODE
        (returned,) = got["returns"]
        assert returned["status"] == "completed" and [logs.strip() for logs in returned["logs"]] == ["385"]
        check_citation(got["annotations"], call["args"]["container_id"])


def test_microsoft_agent_framework_responses_client(frameworks_python, server, upstream):
    upstream.reset()
    upstream.script([python(CODE), {"text": REPLY}, python(CODE), {"text": REPLY}])
    result = run_flow(frameworks_python, server, "agent_framework")
    for mode in ("run", "streamed"):
        got = result[mode]
        assert got["text"] == REPLY
        (call,) = got["calls"]
        assert call["call_id"].startswith("ci_") and call["code"] == CODE
        (citation,) = got["citations"]
        assert citation["type"] == "citation" and citation["url"] == "squares.txt"
        assert citation["file_id"].startswith("cfile_") and citation["container_id"].startswith("cntr_")
        assert [REPLY[start:end] for start, end in citation["regions"]] == [LINK]
    ran = result["run"]
    assert ran["calls"][0]["status"] == "completed" and ran["calls"][0]["container_id"] == ran["citations"][0][
        "container_id"]
    (returned,) = ran["results"]
    assert returned["status"] == "completed" and [logs.strip() for logs in returned["logs"]] == ["385"]
    # Streamed, the framework reads a code call from its output_item.added event (in progress, no
    # outputs yet) and its code deltas, and leaves the call's output_item.done aside (as it does
    # against OpenAI): the result it hands over has no logs.
    assert [r["call_id"] for r in result["streamed"]["results"]] == [result["streamed"]["calls"][0]["call_id"]]

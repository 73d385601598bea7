"""Agent frameworks that drive the Responses API's `code_interpreter` tool through the official
SDK, against the real server, real sandboxes and the scripted upstream model, as a new user would
run them: the OpenAI Agents SDK (`openai-agents`: CodeInterpreterTool, Runner.run and
Runner.run_streamed), pydantic-ai (CodeExecutionTool with OpenAIResponsesModel) and Microsoft's
Agent Framework (its OpenAI Responses client with a hosted code interpreter tool).

Each framework runs as a user's separate process (tests/frameworks/*_flow.py, printing one JSON
line) in .venv-responses-frameworks/, with the versions pinned in
tests/frameworks/responses-requirements.txt, made by scripts/setup.sh --test (or here, on first
use): their dependencies never move the server's. In every flow the model computes something,
writes a file and answers with a `sandbox:/mnt/data/...` link (a first turn, not streamed), then
the user asks a follow-up that the framework sends with the conversation so far (streamed), and
the model's code uses the first turn's variable in the same container. The tests check what the
framework hands the user: the final text and, where the framework exposes them, the code call, its
logs and the container file citation.
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
REPLY = "The sum of the squares is 385: [squares.txt](sandbox:/mnt/data/squares.txt)"
FOLLOW_UP_CODE = ("total += 1\n"
                  "open('/mnt/data/plus_one.txt', 'w').write(f'{total}\\n')\n"
                  "print(total)")
FOLLOW_UP_REPLY = "Plus one is 386: [plus_one.txt](sandbox:/mnt/data/plus_one.txt)"

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


def run_flow(python_bin: Path, server, upstream, name: str, more: list | None = None) -> dict:
    """Script the model (the first turn's code and linked file, then the follow-up's, then `more`),
    run the framework's flow and return what it printed."""
    upstream.reset()
    upstream.script([python(CODE), {"text": REPLY}, python(FOLLOW_UP_CODE), {"text": FOLLOW_UP_REPLY}, *(more or [])])
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=server.api_key, MODEL=MODEL)
    done = subprocess.run([str(python_bin), str(FLOWS / f"{name}_flow.py")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert upstream.pending == 0
    # The follow-up's model call saw the first turn's code call and what it printed.
    follow_up = upstream.requests[2]["messages"]
    (call,) = [c for m in follow_up if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert json.loads(call["function"]["arguments"]) == {"code": CODE}
    assert [m["content"].splitlines()[0] for m in follow_up if m["role"] == "tool"] == ["385"]
    # and its code ran in the first turn's container: it read the first turn's variable
    assert [m["content"].splitlines()[0] for m in upstream.requests[3]["messages"] if m["role"] == "tool"][-1] == "386"
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_citation(citation: dict, reply: str, container_id: str) -> None:
    """A container_file_citation as the Responses API shapes it, spanning the link."""
    link = reply[reply.index("sandbox:"):-1]
    assert citation["type"] == "container_file_citation" and citation["filename"] == link.rsplit("/", 1)[1]
    assert citation["container_id"] == container_id and citation["file_id"].startswith("cfile_")
    assert reply[citation["start_index"]:citation["end_index"]] == link


def check_download(client, container_id: str, file_id: str, printed: str) -> None:
    """The cited file, downloaded as a user then does, holds what the code wrote."""
    content = client.containers.files.content.retrieve(file_id, container_id=container_id)
    assert content.read() == f"{printed}\n".encode()


def test_openai_agents_sdk(frameworks_python, server, client, upstream):
    with_function = [python("total = 385\nprint(total)"), {"tool_calls": [{"name": "temperature", "arguments": {
        "city": "Oslo"}}]}, python("print(total - -5)"), {"text": "390 degrees colder."}]
    result = run_flow(frameworks_python, server, upstream, "openai_agents", with_function)
    turns = [(result["first"], CODE, REPLY, "385"), (result["follow_up"], FOLLOW_UP_CODE, FOLLOW_UP_REPLY, "386")]
    for got, code, reply, printed in turns:
        assert got["final_output"] == reply
        (call,) = got["calls"]
        assert call["code"] == code and call["status"] == "completed"
        assert [logs.strip() for logs in call["logs"]] == [printed]
        (citation,) = got["annotations"]
        check_citation(citation, reply, call["container_id"])
        check_download(client, call["container_id"], citation["file_id"], printed)
    # the follow-up ran in the first turn's container (its code read the first turn's variable)
    assert result["follow_up"]["calls"][0]["container_id"] == result["first"]["calls"][0]["container_id"]
    events = result["follow_up"]["events"]
    assert events[:2] == ["response.created", "response.in_progress"] and events[-1] == "response.completed"
    assert "response.code_interpreter_call_code.delta" in events
    assert "response.output_text.annotation.added" in events
    # With a function tool, the SDK answers the function call by sending the code call back without
    # its outputs (not included by default): the model read them, and the next code call ran in the
    # same container.
    mixed = result["with_function"]
    assert mixed["final_output"] == "390 degrees colder."
    assert mixed["items"] == ["tool_call_item", "tool_call_item", "tool_call_output_item", "tool_call_item",
                              "message_output_item"]
    assert [call["logs"] for call in mixed["calls"]] == [[], []]  # outputs not included
    assert len({call["container_id"] for call in mixed["calls"]}) == 1
    last = upstream.requests[-1]["messages"]
    assert [m["content"].splitlines()[0] for m in last if m["role"] == "tool"] == ["385", "Oslo: -5", "390"]


def test_pydantic_ai_code_execution_tool(frameworks_python, server, client, upstream):
    result = run_flow(frameworks_python, server, upstream, "pydantic_ai")
    turns = [(result["first"], CODE, REPLY, "385"), (result["follow_up"], FOLLOW_UP_CODE, FOLLOW_UP_REPLY, "386")]
    for got, code, reply, printed in turns:
        assert got["output"] == reply
        (call,) = got["calls"]
        assert call["tool_name"] == "code_execution" and call["args"]["code"] == code
        (returned,) = got["returns"]
        assert returned["status"] == "completed" and [logs.strip() for logs in returned["logs"]] == [printed]
        (citation,) = got["annotations"]
        check_citation(citation, reply, call["args"]["container_id"])
        check_download(client, call["args"]["container_id"], citation["file_id"], printed)
    assert result["follow_up"]["calls"][0]["args"]["container_id"] == result["first"]["calls"][0]["args"][
        "container_id"]
    assert result["follow_up"]["events"][-1] == "agent_run_result"


def test_microsoft_agent_framework_responses_client(frameworks_python, server, client, upstream):
    result = run_flow(frameworks_python, server, upstream, "agent_framework")
    turns = [(result["first"], CODE, REPLY, "385"), (result["follow_up"], FOLLOW_UP_CODE, FOLLOW_UP_REPLY, "386")]
    for got, code, reply, printed in turns:
        assert got["text"] == reply
        (call,) = got["calls"]
        assert call["call_id"].startswith("ci_") and call["code"] == code
        assert [r["call_id"] for r in got["results"]] == [call["call_id"]]
        (citation,) = got["citations"]
        link = reply[reply.index("sandbox:"):-1]
        assert citation["type"] == "citation" and citation["url"] == link.rsplit("/", 1)[1]
        assert citation["file_id"].startswith("cfile_") and citation["container_id"].startswith("cntr_")
        assert [reply[start:end] for start, end in citation["regions"]] == [link]
        check_download(client, citation["container_id"], citation["file_id"], printed)
    first = result["first"]
    assert first["calls"][0]["status"] == "completed"
    assert first["calls"][0]["container_id"] == first["citations"][0]["container_id"]
    (returned,) = first["results"]
    assert returned["status"] == "completed" and [logs.strip() for logs in returned["logs"]] == ["385"]
    # Streamed, the framework reads a code call from its output_item.added event (in progress, no
    # outputs yet) and its code deltas, and leaves the call's output_item.done aside (as it does
    # against OpenAI): the result it hands over has no logs (run_flow saw the model read 386).
    assert result["follow_up"]["results"][0]["logs"] == []
    assert result["follow_up"]["citations"][0]["container_id"] == first["citations"][0]["container_id"]

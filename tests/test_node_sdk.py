"""One flow through the official Node SDK (npm `openai`, pinned in tests/node/package.json)
against the real server and a scripted upstream: a polled run and a streamed run."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_sdk():
    assert shutil.which("node"), "Node.js is needed: scripts/setup.sh --test installs it"
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        assert shutil.which("npm"), "npm is needed: scripts/setup.sh --test installs it"
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)
    return NODE_DIR


def test_seed_flow_through_the_node_sdk(node_sdk, server, upstream):
    code = ("import pandas as pd\n"
            "df = pd.read_csv('/mnt/data/points.csv')\n"
            "df.assign(total=df.y.sum()).to_csv('/mnt/data/summed.csv', index=False)\n"
            "int(df.y.sum())")
    reply = "The sum is 6: [download](sandbox:/mnt/data/summed.csv)"
    upstream.reset()
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": code}}]},
                     {"text": reply},
                     {"tool_calls": [{"name": "python", "arguments": {"code": "print(len(df))"}}]},
                     {"text": "There are 2 rows."}])
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=server.api_key)
    done = subprocess.run(["node", "flow.mjs"], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["status"] == "completed", result.get("last_error")
    assert result["reply"] == reply
    link = "sandbox:/mnt/data/summed.csv"
    assert result["annotation"] == {"start": reply.index(link), "end": reply.index(link) + len(link), "text": link}
    assert [logs.strip() for logs in result["logs"]] == ["6"]
    assert result["download"].splitlines() == ["x,y,total", "1,2,6", "3,4,6"]

    streamed = result["streamed"]
    assert streamed["status"] == "completed"
    assert streamed["text"] == "There are 2 rows."
    assert streamed["code"] == "print(len(df))"
    assert [logs.strip() for logs in streamed["logs"]] == ["2"]
    events = streamed["events"]
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[-1] == "thread.run.completed"
    assert "thread.run.step.delta" in events and "thread.message.delta" in events
    # the model saw the first run's code output before answering
    assert any("6" in str(m.get("content")) for m in upstream.requests[1]["messages"] if m["role"] == "tool")


def test_streamed_response_through_the_node_sdk(node_sdk, server, upstream):
    code = ("import glob, pandas as pd\n"
            "df = pd.read_csv(glob.glob('/mnt/data/*points.csv')[0])\n"
            "df.assign(total=df.y.sum()).to_csv('/mnt/data/summed.csv', index=False)\n"
            "print(int(df.y.sum()))")
    reply = "The sum is 6: [download](sandbox:/mnt/data/summed.csv)"
    upstream.reset()
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": code}}]}, {"text": reply}])
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=server.api_key)
    done = subprocess.run(["node", "responses.mjs"], cwd=node_sdk, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["text"] == reply and result["code"] == code
    assert [logs.strip() for logs in result["logs"]] == ["6"]
    assert result["events"][:2] == ["response.created", "response.in_progress"]
    assert result["events"][-1] == "response.completed"
    assert "response.code_interpreter_call_code.delta" in result["events"]
    link = "sandbox:/mnt/data/summed.csv"
    citation = result["citation"]
    assert citation["type"] == "container_file_citation" and citation["filename"] == "summed.csv"
    assert (citation["start_index"], citation["end_index"]) == (reply.index(link), reply.index(link) + len(link))
    assert result["download"].splitlines() == ["x,y,total", "1,2,6", "3,4,6"]

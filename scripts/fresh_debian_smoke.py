"""The smoke check of scripts/fresh-debian-check.sh: serves codeinterp from a fresh Debian root
(`chroot ROOT`, the README's serve command) against the tests' scripted upstream model on this
host, then checks /healthz, /readyz, a Files upload and one code cell run through the Assistants
API with the official SDK; prints what it saw and exits non-zero on any failure.

    PYTHONPATH=. .venv/bin/python scripts/fresh_debian_smoke.py ROOT /opt/codeinterp
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings

import openai

from tests.helpers.server import free_port
from tests.helpers.upstream import ScriptedUpstream

KEY = "fresh-debian-check"
CODE = ("import pandas as pd, spacy, nltk\n"
        "print(pd.read_csv('/mnt/data/numbers.csv').x.sum())\n"
        "print([e.label_ for e in spacy.load('en_core_web_sm')('Apple opened an office in London.').ents])\n"
        "print(nltk.word_tokenize(\"It's baked in.\"))")
EXPECTED = "6\n['ORG', 'GPE']\n['It', \"'s\", 'baked', 'in', '.']\n"


def wait_for(url: str, server: subprocess.Popen, seconds: float = 120) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read()
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(1)


def main() -> int:
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks the Assistants API deprecated
    root, checkout = sys.argv[1], sys.argv[2]
    upstream = ScriptedUpstream()
    port = free_port()
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "CODEINTERP_API_KEY": KEY, "CODEINTERP_MODEL_BASE_URL": upstream.base_url,
           "CODEINTERP_MODEL_API_KEY": "unused"}
    command = [shutil.which("chroot"), root, "/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), "bash", "-c",
               f"cd {checkout} && exec .venv/bin/codeinterp serve --host 127.0.0.1 --port {port}"]
    log = open(f"{root}.serve.log", "wb")
    server = subprocess.Popen(command, env={}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        print("healthz:", wait_for(f"{base}/healthz", server).decode().strip())
        print("readyz:", wait_for(f"{base}/readyz", server).decode().strip())
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=300,
                               _strict_response_validation=True)
        uploaded = client.files.create(file=("numbers.csv", b"x\n1\n2\n3\n"), purpose="assistants")
        print("file:", uploaded.id, uploaded.filename, uploaded.bytes)
        upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": CODE}}]}, {"text": "Done."}])
        assistant = client.beta.assistants.create(model="scripted-model", tools=[{"type": "code_interpreter"}],
                                                  tool_resources={"code_interpreter": {"file_ids": [uploaded.id]}})
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Sum x."}]})
        steps = client.beta.threads.runs.steps.list(thread_id=run.thread_id, run_id=run.id, order="asc")
        logs = [output.logs for step in steps.data if step.step_details.type == "tool_calls"
                for call in step.step_details.tool_calls for output in call.code_interpreter.outputs
                if output.type == "logs"]
        print("run:", run.status, json.dumps(logs))
        ok = run.status == "completed" and logs == [EXPECTED]
        print("smoke check:", "OK" if ok else f"FAILED (wanted logs {EXPECTED!r})")
        return 0 if ok else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        upstream.close()


if __name__ == "__main__":
    sys.exit(main())

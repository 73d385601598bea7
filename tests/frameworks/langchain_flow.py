"""A user's flow through LangChain's Assistants runnables, run by tests/test_frameworks.py with the
python of .venv-frameworks/langchain (OPENAI_BASE_URL and OPENAI_API_KEY point at the server):

    python langchain_flow.py v1|v2 DATA_FILE MODEL

Uploads DATA_FILE, asks an assistant with code_interpreter about it (as_agent=True: the answer
flattened to text), and prints, as one JSON line, what the runnable handed back and the bytes of
each file it listed (downloaded through the server)."""

import base64
import json
import sys
import warnings

import openai
from langchain_classic.agents.openai_assistant import OpenAIAssistantRunnable
from langchain_community.agents.openai_assistant import OpenAIAssistantV2Runnable

warnings.simplefilter("ignore")  # the Assistants API and these runnables are marked deprecated
QUESTION = "Square the numbers in the file and give me the table."


def main(version: str, data_path: str, model: str) -> None:
    client = openai.OpenAI()
    with open(data_path, "rb") as data:
        upload = client.files.create(file=data, purpose="assistants")
    tools = [{"type": "code_interpreter"}]
    if version == "v1":
        runnable = OpenAIAssistantRunnable.create_assistant(
            name="Analyst", instructions="You analyse data.", tools=tools, model=model, client=client,
            as_agent=True, check_every_ms=100)
        finish = runnable.invoke({"content": QUESTION, "attachments": [{"file_id": upload.id, "tools": tools}]})
    else:
        runnable = OpenAIAssistantV2Runnable.create_assistant(
            name="Analyst", instructions="You analyse data.", tools=tools, model=model, client=client,
            as_agent=True, check_every_ms=100)
        finish = runnable.invoke({"content": QUESTION}, file_ids=[upload.id])  # the runnable's own attachments
    values = finish.return_values
    files = [a.file_id for a in values["attachments"]]
    print(json.dumps({
        "input_file_id": upload.id, "thread_id": values["thread_id"], "output": values["output"], "files": files,
        "contents": {f: base64.b64encode(client.files.content(f).read()).decode() for f in files}}))


if __name__ == "__main__":
    main(*sys.argv[1:])

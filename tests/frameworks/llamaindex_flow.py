"""A user's flow through LlamaIndex's OpenAIAssistantAgent, run by tests/test_frameworks.py with the
python of .venv-frameworks/llamaindex (OPENAI_BASE_URL and OPENAI_API_KEY point at the server):

    python llamaindex_flow.py DATA_FILE MODEL

The agent uploads DATA_FILE (`files=`), the file is attached to a message with `add_message(...,
file_ids=...)` (file_search, the agent's default), then `chat()` asks about it. Prints, as one JSON
line, what the agent handed back and the bytes of each file the answer lists (downloaded through
the server)."""

import base64
import json
import os
import sys
import warnings

from llama_index.agent.openai import OpenAIAssistantAgent

warnings.simplefilter("ignore")  # the agent and the Assistants API are marked deprecated


def main(data_path: str, model: str) -> None:
    agent = OpenAIAssistantAgent.from_new(
        name="Analyst", instructions="You analyse data.", openai_tools=[{"type": "code_interpreter"}],
        model=model, files=[data_path], api_key=os.environ["OPENAI_API_KEY"])
    agent.add_message("Here is my data.", file_ids=list(agent.files_dict))
    response = agent.chat("Square the numbers in the file and give me the table.")
    message = agent.latest_message.additional_kwargs["thread_message"]
    files = [a.file_id for a in message.attachments]
    print(json.dumps({
        "input_file_ids": list(agent.files_dict), "thread_id": agent.thread_id, "output": response.response,
        "files": files,
        "contents": {f: base64.b64encode(agent.client.files.content(f).read()).decode() for f in files}}))


if __name__ == "__main__":
    main(*sys.argv[1:])

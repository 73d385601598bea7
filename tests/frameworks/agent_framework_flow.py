"""Microsoft's Agent Framework (`agent-framework-core` + `agent-framework-openai`) driving the
Responses `code_interpreter` tool on this server: an Agent on OpenAIChatClient (the framework's
Responses client) with its hosted code interpreter tool (OpenAIChatClient.get_code_interpreter_tool,
an auto container), a first turn with `agent.run` in an AgentSession, then a follow-up in the same
session with `agent.run(..., stream=True)` (the session continues by `previous_response_id`). The
client asks for `reasoning.encrypted_content` on every request that keeps no history server-side,
whatever the model. Run with the responses-frameworks venv's python; OPENAI_BASE_URL,
OPENAI_API_KEY and MODEL name the server and the model. Prints one JSON line: per turn, the text,
the code calls, their results and the text's citations as the framework hands them over."""

import asyncio
import json
import os

from agent_framework import Agent
from agent_framework.openai import OpenAIChatClient

client = OpenAIChatClient(os.environ["MODEL"], api_key=os.environ["OPENAI_API_KEY"],
                          base_url=os.environ["OPENAI_BASE_URL"])
agent = Agent(client=client, instructions="You answer with code.",
              tools=[OpenAIChatClient.get_code_interpreter_tool()],
              default_options={"include": ["code_interpreter_call.outputs"]})


def summary(response) -> dict:
    calls, results, citations = [], [], []
    for message in response.messages:
        for content in message.contents:
            if content.type == "code_interpreter_tool_call":
                calls.append({"call_id": content.call_id, "status": content.status,
                              "code": "".join(i.text for i in content.inputs or [] if i.type == "text"),
                              "container_id": getattr(content.raw_representation, "container_id", None)})
            elif content.type == "code_interpreter_tool_result":
                results.append({"call_id": content.call_id, "status": content.status,
                                "logs": [o.text for o in content.outputs or [] if o.type == "text"]})
            elif content.type == "text":
                for annotation in content.annotations or []:
                    citations.append({"type": annotation.get("type"), "file_id": annotation.get("file_id"),
                                      "url": annotation.get("url"),
                                      "container_id": (annotation.get("additional_properties") or {}).get(
                                          "container_id"),
                                      "regions": [[r.get("start_index"), r.get("end_index")]
                                                  for r in annotation.get("annotated_regions") or []]})
    return {"text": response.text, "calls": calls, "results": results, "citations": citations}


async def main() -> None:
    session = agent.create_session()
    first = await agent.run("Compute the sum of the squares of 1..10 and save it to a file.", session=session)
    stream = agent.run("Add one to it and save that too.", session=session, stream=True)
    updates = [update async for update in stream]
    follow_up = await stream.get_final_response()
    print(json.dumps({"first": summary(first), "follow_up": summary(follow_up) | {"updates": len(updates)}},
                     default=str))


asyncio.run(main())

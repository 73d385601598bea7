"""The OpenAI Agents SDK (`openai-agents`) driving the Responses `code_interpreter` tool on this
server, as its documentation shows: an Agent with `CodeInterpreterTool` on an auto container, run
with `Runner.run` and with `Runner.run_streamed`. Run with the responses-frameworks venv's python;
OPENAI_BASE_URL and OPENAI_API_KEY name the server. Prints one JSON line: per mode, the final
output, the code calls (code, logs, container) and the message's annotations."""

import asyncio
import json
import os

from agents import (Agent, CodeInterpreterTool, ModelSettings, OpenAIResponsesModel, Runner,
                    set_tracing_disabled)
from openai import AsyncOpenAI

set_tracing_disabled(True)


def agent() -> Agent:
    client = AsyncOpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"],
                         max_retries=0)
    return Agent(
        name="Analyst",
        instructions="You answer with code.",
        model=OpenAIResponsesModel(model=os.environ["MODEL"], openai_client=client),
        model_settings=ModelSettings(response_include=["code_interpreter_call.outputs"]),
        tools=[CodeInterpreterTool(tool_config={"type": "code_interpreter", "container": {"type": "auto"}})],
    )


def summary(result) -> dict:
    calls, annotations = [], []
    for item in result.new_items:
        raw = item.raw_item
        if item.type == "tool_call_item" and getattr(raw, "type", None) == "code_interpreter_call":
            calls.append({"code": raw.code, "container_id": raw.container_id, "status": raw.status,
                          "logs": [o.logs for o in raw.outputs or [] if o.type == "logs"]})
        elif item.type == "message_output_item":
            annotations += [a.model_dump() for part in raw.content for a in getattr(part, "annotations", [])]
    return {"final_output": result.final_output, "calls": calls, "annotations": annotations,
            "items": [item.type for item in result.new_items]}


async def main() -> None:
    ran = await Runner.run(agent(), "Compute the sum of the squares of 1..10 and save it to a file.")
    streamed = Runner.run_streamed(agent(), "Do it again, streamed.")
    events = [event.data.type async for event in streamed.stream_events() if event.type == "raw_response_event"]
    print(json.dumps({"run": summary(ran), "streamed": summary(streamed) | {"events": events}}))


asyncio.run(main())

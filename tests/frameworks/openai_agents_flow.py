"""The OpenAI Agents SDK (`openai-agents`) driving the Responses `code_interpreter` tool on this
server, as its documentation shows: an Agent with `CodeInterpreterTool` on an auto container, a
first turn with `Runner.run`, then a follow-up with `Runner.run_streamed` on the first result's
`to_input_list()` (the SDK keeps the history and sends the code call and the cited message back);
then an agent with a function tool beside the code interpreter and the SDK's default settings,
whose one `Runner.run` sends the code call back (outputs null) with the function's output.
Run with the responses-frameworks venv's python; OPENAI_BASE_URL, OPENAI_API_KEY and MODEL name
the server and the model. Prints one JSON line: per turn, the final output, the code calls (code,
status, container, logs), the message's annotations and, streamed, the raw event types."""

import asyncio
import json
import os

from agents import (Agent, CodeInterpreterTool, ModelSettings, OpenAIResponsesModel, Runner, function_tool,
                    set_tracing_disabled)
from openai import AsyncOpenAI

set_tracing_disabled(True)
client = AsyncOpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"], max_retries=0)
agent = Agent(
    name="Analyst",
    instructions="You answer with code.",
    model=OpenAIResponsesModel(model=os.environ["MODEL"], openai_client=client),
    model_settings=ModelSettings(response_include=["code_interpreter_call.outputs"]),
    tools=[CodeInterpreterTool(tool_config={"type": "code_interpreter", "container": {"type": "auto"}})],
)


@function_tool
def temperature(city: str) -> str:
    """The temperature in a city, in degrees Celsius."""
    return f"{city}: -5"


with_function = agent.clone(model_settings=ModelSettings(), tools=[temperature, *agent.tools])


def summary(result) -> dict:
    calls, annotations = [], []
    for item in result.new_items:
        raw = item.raw_item
        if item.type == "tool_call_item" and getattr(raw, "type", None) == "code_interpreter_call":
            calls.append({"code": raw.code, "container_id": raw.container_id, "status": raw.status,
                          "logs": [o.logs for o in raw.outputs or [] if o.type == "logs"]})
        elif item.type == "message_output_item":
            annotations += [a.model_dump() for part in raw.content for a in getattr(part, "annotations", [])]
    return {"final_output": result.final_output, "calls": calls, "annotations": annotations}


async def main() -> None:
    first = await Runner.run(agent, "Compute the sum of the squares of 1..10 and save it to a file.")
    follow_up = first.to_input_list() + [{"role": "user", "content": "Add one to it and save that too."}]
    streamed = Runner.run_streamed(agent, follow_up)
    events = [event.data.type async for event in streamed.stream_events() if event.type == "raw_response_event"]
    mixed = await Runner.run(with_function, "How much colder than the sum is Oslo?")
    print(json.dumps({"first": summary(first), "follow_up": summary(streamed) | {"events": events},
                      "with_function": summary(mixed) | {"items": [item.type for item in mixed.new_items]}}))


asyncio.run(main())

"""pydantic-ai driving the Responses `code_interpreter` tool on this server: an Agent on
OpenAIResponsesModel (its OpenAIProvider pointed at the server) with the CodeExecutionTool native
tool; a first turn with `agent.run`, then a follow-up with `agent.run_stream_events` on the first
run's messages. pydantic-ai sends a code call back by its id with `outputs: null` (OpenAI reads
them server-side) when item ids are sent, as it does by default for OpenAI's reasoning models
(`openai_send_reasoning_ids`, set here for the test's model name). Run with the
responses-frameworks venv's python; OPENAI_BASE_URL, OPENAI_API_KEY and MODEL name the server and
the model. Prints one JSON line: per turn, the output, the code calls and their results as
pydantic-ai hands them over, and the text's raw annotations."""

import asyncio
import json
import os

from pydantic_ai import Agent
from pydantic_ai.capabilities import NativeTool
from pydantic_ai.messages import ModelResponse, NativeToolCallPart, NativeToolReturnPart, TextPart
from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings
from pydantic_ai.native_tools import CodeExecutionTool
from pydantic_ai.providers.openai import OpenAIProvider

provider = OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
agent = Agent(
    OpenAIResponsesModel(os.environ["MODEL"], provider=provider),
    instructions="You answer with code.",
    capabilities=[NativeTool(CodeExecutionTool())],
    model_settings=OpenAIResponsesModelSettings(openai_include_code_execution_outputs=True,
                                                openai_include_raw_annotations=True,
                                                openai_send_reasoning_ids=True),
)


def summary(result) -> dict:
    calls, returns, annotations = [], [], []
    for message in result.new_messages():
        for part in message.parts if isinstance(message, ModelResponse) else []:
            if isinstance(part, NativeToolCallPart):
                calls.append({"tool_name": part.tool_name, "args": part.args_as_dict()})
            elif isinstance(part, NativeToolReturnPart):
                returns.append(part.content)
            elif isinstance(part, TextPart):
                annotations += (part.provider_details or {}).get("annotations", [])
    return {"output": result.output, "calls": calls, "returns": returns, "annotations": annotations}


async def main() -> None:
    first = await agent.run("Compute the sum of the squares of 1..10 and save it to a file.")
    events, follow_up = [], None
    async with agent.run_stream_events("Add one to it and save that too.",
                                       message_history=first.all_messages()) as stream:
        async for event in stream:
            events.append(event.event_kind)
            if event.event_kind == "agent_run_result":
                follow_up = event.result
    print(json.dumps({"first": summary(first), "follow_up": summary(follow_up) | {"events": events}}, default=str))


asyncio.run(main())

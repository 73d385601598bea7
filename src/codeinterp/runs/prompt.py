"""Builds the Chat Completions `messages` for a run from the thread.

Order: a system message (the run's instructions, its additional instructions and the files
in /mnt/data), then the thread as it happened: user messages, and for each earlier run its
steps in order — tool calls with their results, and the messages it wrote.
"""

import json

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from codeinterp.runs.python_tool import TOOL_NAME, quoted_path
from codeinterp.store.threads import Message
from codeinterp.store.runs import TERMINAL_RUN_STATUSES, Run, RunStep

NO_RESULT = "[no result: the run ended before this tool call finished]"


def system_message(run: Run, files: list[str], max_files: int) -> dict | None:
    """The instructions, then the first `max_files` of `files` (paths under /mnt/data)."""
    parts = [p for p in (run.instructions, run.additional_instructions, files_listing(files, max_files)) if p]
    return {"role": "system", "content": "\n\n".join(parts)} if parts else None


def files_listing(files: list[str], max_files: int) -> str:
    """What the model is told of the files in /mnt/data: the first `max_files` paths ("" if none)."""
    if not files:
        return ""
    listing = "\n".join(f"- {quoted_path(path)}" for path in files[:max_files])
    if len(files) > max_files:
        listing += f"\n(and {len(files) - max_files} more files in /mnt/data, not listed)"
    return "Files available to the python tool (in /mnt/data):\n" + listing


def message_text(content: list[dict], images: bool = True) -> str:
    texts = []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(block["text"]["value"])
        elif not images:
            continue
        elif block.get("type") == "image_file":
            texts.append(f"[image file {block['image_file']['file_id']}]")
        elif block.get("type") == "image_url":
            texts.append(f"[image {block['image_url']['url']}]")
    return "\n".join(texts)


def user_message(row, paths_by_file: dict[str, str]) -> dict:
    """A message (a row of `MESSAGE_COLUMNS`) written by the user as a chat message."""
    text = message_text(row.content)
    attached = [paths_by_file[a["file_id"]] for a in (row.attachments or [])
                if a.get("file_id") in paths_by_file]
    if attached:
        text += "\n\n" + "\n".join(f"(attached file: {quoted_path(p)})" for p in attached)
    return {"role": row.role, "content": text}


def step_messages(step, messages: dict) -> list[dict]:
    """A run step (a row of its type, step_details and tool_results) as chat messages; `messages`
    holds the thread's messages (rows of `MESSAGE_COLUMNS`) by id."""
    details = step.step_details
    if step.type == "message_creation":
        row = messages.get(details["message_creation"]["message_id"])
        return [{"role": "assistant", "content": message_text(row.content, images=False)}] if row else []
    calls, results = [], []
    for call in details.get("tool_calls", []):
        if call["type"] == "code_interpreter":
            arguments = json.dumps({"code": call["code_interpreter"]["input"]})
            calls.append({"id": call["id"], "type": "function",
                          "function": {"name": TOOL_NAME, "arguments": arguments}})
            output = (step.tool_results or {}).get(call["id"])
        elif call["type"] == "function":
            calls.append({"id": call["id"], "type": "function",
                          "function": {"name": call["function"]["name"],
                                       "arguments": call["function"]["arguments"]}})
            output = call["function"].get("output")
        else:
            continue
        results.append({"role": "tool", "tool_call_id": call["id"],
                        "content": output if output is not None else NO_RESULT})
    if not calls:
        return []
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *results]


# What the prompt reads of a message. A long thread has many messages, runs and steps: they are read
# as plain rows, not ORM objects.
MESSAGE_COLUMNS = (Message.id, Message.run_id, Message.sequence, Message.role, Message.content, Message.attachments)


THREAD_MESSAGES = (select(*MESSAGE_COLUMNS)
                   .where(Message.project_id == bindparam("project_id"), Message.thread_id == bindparam("thread_id"))
                   .order_by(Message.sequence))
THREAD_RUNS = (select(Run.id, Run.sequence, Run.status)
               .where(Run.project_id == bindparam("project_id"), Run.thread_id == bindparam("thread_id"))
               .order_by(Run.sequence))
RUN_STEPS = (select(RunStep.run_id, RunStep.type, RunStep.step_details, RunStep.tool_results)
             .where(RunStep.project_id == bindparam("project_id"),
                    RunStep.run_id.in_(bindparam("run_ids", expanding=True)))
             .order_by(RunStep.position))

# A run's part of the prompt: its chat messages, each with the id of the thread message it shows
# (None for tool calls and their results), so that a message deleted since can be left out.
RunPart = list[tuple[str | None, dict]]


def run_part(steps: list, messages: dict) -> RunPart:
    """The chat messages of a run's steps (rows of RUN_STEPS, in order); `messages` holds the
    thread's messages (rows of `MESSAGE_COLUMNS`) by id."""
    part: RunPart = []
    for step in steps:
        message_id = step.step_details["message_creation"]["message_id"] if step.type == "message_creation" else None
        part += [(message_id, m) for m in step_messages(step, messages)]
    return part


async def message_rows(connection: AsyncConnection, project_id: str, thread_id: str) -> list:
    """The thread's messages in order, as rows of `MESSAGE_COLUMNS`."""
    return list((await connection.execute(
        THREAD_MESSAGES, {"project_id": project_id, "thread_id": thread_id})).all())


async def thread_messages(connection: AsyncConnection, run: Run, rows: list, paths_by_file: dict[str, str],
                          ended_runs: dict[str, RunPart]) -> list[dict]:
    """The thread so far as chat messages (without the system message); `rows` are its messages
    from `message_rows`. `ended_runs` keeps the parts of the thread's runs that have ended (they no
    longer change): they are read from there, not from the database, and new ones are added."""
    runs = (await connection.execute(THREAD_RUNS, {"project_id": run.project_id, "thread_id": run.thread_id})).all()
    by_id = {m.id: m for m in rows}
    steps_by_run: dict[str, list] = {}
    unread = [r.id for r in runs if r.id not in ended_runs]
    if unread:
        for step in await connection.execute(RUN_STEPS, {"project_id": run.project_id, "run_ids": unread}):
            steps_by_run.setdefault(step.run_id, []).append(step)
    parts: dict[str, RunPart] = {}
    for r in runs:
        part = ended_runs.get(r.id)
        if part is None:
            part = run_part(steps_by_run.get(r.id, []), by_id)
            if r.status in TERMINAL_RUN_STATUSES:
                ended_runs[r.id] = part
        parts[r.id] = part

    standalone = [m for m in rows if m.run_id not in parts]
    if run.truncation_strategy and run.truncation_strategy.get("type") == "last_messages" \
            and run.truncation_strategy.get("last_messages"):
        standalone = standalone[-run.truncation_strategy["last_messages"]:]
        first = standalone[0].sequence if standalone else run.sequence
        runs = [r for r in runs if r.sequence >= first]

    timeline = sorted([*((m.sequence, m, None) for m in standalone), *((r.sequence, None, r) for r in runs)],
                      key=lambda item: item[0])
    out: list[dict] = []
    for _, message, run_row in timeline:
        if message is not None:
            out.append(user_message(message, paths_by_file))
        else:
            out.extend(m for message_id, m in parts[run_row.id] if message_id is None or message_id in by_id)
    return out

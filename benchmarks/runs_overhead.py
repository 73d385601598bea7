"""Orchestration overhead per run: a one-cell run, from its creation to `thread.run.completed`,
beside the same cell executed directly on a sandbox session in this process.

The upstream model is the scripted one and answers at once (a `python` tool call, then a short
text), so what a run adds to the bare execution is the run engine, the database, the API and
two local round trips to the model endpoint. Target: at most 30 ms added at p50 (warm thread).

    .venv/bin/python benchmarks/runs_overhead.py [--runs 30]

- warm: every run on one thread, so its sandbox session is already running; baseline: the
  cell executed again and again on one session. The thread grows with each run: the first and
  the last tenth of these runs are compared too (e.g. with --runs 100).
- new thread: every run on a new thread (a session starts for each); baseline: a new session
  plus the cell.
Runs are timed over HTTP with streaming (`stream: true`), from sending the request to reading
the `thread.run.completed` event; the client reads the raw event stream to keep its own cost low.
"""

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httpx

from runs_common import MODEL, Server, ScriptedUpstream, one_cell_model, percentile, summary

CELL = "total = sum(i * i for i in range(1000))\ntotal"


async def bare_sandbox(runs: int) -> tuple[list[float], list[float]]:
    """Seconds per execution of CELL on a running session, and per new session + CELL."""
    from sandbox_common import sandbox_manager

    async with sandbox_manager() as manager:
        session = await manager.create_session()
        await session.execute(CELL)  # warm-up
        warm = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await session.execute(CELL)
            warm.append(time.perf_counter() - started)
            assert result.status == "ok", result
        await session.close()
        cold = []
        for _ in range(runs):
            started = time.perf_counter()
            fresh = await manager.create_session()
            result = await fresh.execute(CELL)
            cold.append(time.perf_counter() - started)
            assert result.status == "ok", result
            await fresh.close()
        return warm, cold


def _until_completed(client: httpx.Client, url: str, body: dict) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, json=dict(body, stream=True)) as response:
        response.raise_for_status()
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event in ("thread.run.failed", "thread.run.cancelled", "thread.run.expired", "error"):
                    raise RuntimeError(f"the run ended with {event}")
            elif event == "thread.run.completed" and line.startswith("data: "):
                return time.perf_counter() - started
    raise RuntimeError("the stream ended before thread.run.completed")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_runs(runs: int) -> tuple[list[float], list[float], float]:
    upstream = ScriptedUpstream()
    upstream.fallback = one_cell_model(CELL)
    server = Server(upstream)
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:
            assistant = client.post("/assistants", json={"model": MODEL, "tools": [{"type": "code_interpreter"}]}
                                    ).raise_for_status().json()
            thread = client.post("/threads", json={}).raise_for_status().json()
            body = {"assistant_id": assistant["id"]}
            _until_completed(client, f"/threads/{thread['id']}/runs", body)  # warm-up: starts the session
            time.sleep(3)  # the server starts its warm sandbox sessions in the background: let it finish
            cpu_before = cpu_seconds(server.process.pid)
            warm = [_until_completed(client, f"/threads/{thread['id']}/runs", body) for _ in range(runs)]
            cpu_per_run = (cpu_seconds(server.process.pid) - cpu_before) / runs
            new_thread = [_until_completed(client, "/threads/runs", dict(body, thread={}))
                          for _ in range(runs)]
            checked = client.get(f"/threads/{thread['id']}/runs", params={"limit": 1}).raise_for_status().json()
            steps = client.get(f"/threads/{thread['id']}/runs/{checked['data'][0]['id']}/steps"
                               ).raise_for_status().json()
            tool_step = next(s for s in steps["data"] if s["type"] == "tool_calls")
            logs = tool_step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]
            assert any("332833500" in o.get("logs", "") for o in logs), json.dumps(logs)
        return warm, new_thread, cpu_per_run
    finally:
        server.stop()
        upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    os.chdir(os.path.dirname(os.path.abspath(__file__)) + "/..")

    bare_warm, bare_cold = asyncio.run(bare_sandbox(args.runs))
    run_warm, run_new, cpu_per_run = server_runs(args.runs)

    print(f"one-cell run, {args.runs} runs each; cell: {CELL!r}")
    print(f"  bare sandbox, running session   {summary(bare_warm)}")
    print(f"  run on a warm thread            {summary(run_warm)}")
    tenth = max(1, len(run_warm) // 10)
    print(f"    as the thread grows: p50 of its first {tenth} runs {percentile(run_warm[:tenth], 50) * 1000:.1f} ms, "
          f"of its last {tenth} {percentile(run_warm[-tenth:], 50) * 1000:.1f} ms")
    print(f"  server CPU per run on the warm thread {cpu_per_run * 1000:.1f} ms")
    print(f"  bare sandbox, new session       {summary(bare_cold)}")
    print(f"  run on a new thread             {summary(run_new)}")
    added_warm = (percentile(run_warm, 50) - percentile(bare_warm, 50)) * 1000
    added_new = (percentile(run_new, 50) - percentile(bare_cold, 50)) * 1000
    print(f"added by the run at p50: warm thread {added_warm:.1f} ms (target <= 30 ms: "
          f"{'met' if added_warm <= 30 else 'NOT met'}), new thread {added_new:.1f} ms")


if __name__ == "__main__":
    main()

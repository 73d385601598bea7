"""What a Responses request with one code call adds to its parts, and a new container's first
result, beside baselines measured in the same run.

    .venv/bin/python benchmarks/responses_overhead.py [--runs 30] [--concurrent 50]

- one-cell response on a container whose session runs (streamed, to `response.completed`):
  baseline = the same two upstream calls made directly with Chat Completions (streamed) + the
  cell on a running sandbox session in this process. Target: at most 15 ms added at p50. The
  streamed time to `response.created` is reported too.
- new container to its first `1+1` result: POST /v1/containers, then a streamed response running
  `1+1` in it, timed to the code call's result (its `output_item.done`, logs included); baseline =
  two HTTP round trips to the server (GET /healthz) + the upstream call made before the code runs.
  Target: at most 10 ms beyond that at p50. Also timed to `response.completed`, against the round
  trips and both upstream calls.
- `--concurrent` containers, each running a cell computing its own number at once: all correct.
"""

import argparse
import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from runs_common import MODEL, Server, ScriptedUpstream, one_cell_model, percentile, summary

CELL = "total = sum(i * i for i in range(1000))\ntotal"
ONE_PLUS_ONE = "1+1"


async def bare_cell(runs: int) -> list[float]:
    from sandbox_common import sandbox_manager

    async with sandbox_manager() as manager:
        session = await manager.create_session()
        await session.execute(CELL)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            assert (await session.execute(CELL)).status == "ok"
            times.append(time.perf_counter() - started)
        await session.close()
        return times


def direct_upstream(upstream: ScriptedUpstream, runs: int) -> tuple[list[float], list[float]]:
    """The two streamed Chat Completions calls of a one-cell response, made directly: both, and
    the first alone (the one before the code runs)."""
    first = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    second = {"model": MODEL, "stream": True, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "python", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "332833500"}]}
    times, firsts = [], []
    with httpx.Client(base_url=upstream.base_url, timeout=60) as client:
        for _ in range(runs + 1):
            started = time.perf_counter()
            for body in (first, second):
                with client.stream("POST", "/chat/completions", json=body) as r:
                    for _ in r.iter_lines():
                        pass
                if body is first:
                    firsts.append(time.perf_counter() - started)
            times.append(time.perf_counter() - started)
    return times[1:], firsts[1:]


def streamed(client: httpx.Client, body: dict, result: list | None = None) -> tuple[float, float, dict]:
    """Seconds to `response.created` and to `response.completed`, and the final event's data;
    appended to `result`: the perf_counter time the first code call's item came done, outputs included."""
    import json

    started = time.perf_counter()
    created = None
    event = None
    with client.stream("POST", "/responses", json=dict(body, stream=True)) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "response.created" and created is None:
                    created = time.perf_counter() - started
                if event in ("response.failed", "error"):
                    raise RuntimeError(f"the response ended with {event}")
            elif event == "response.output_item.done" and result is not None and not result:
                item = json.loads(line[6:])["item"]
                if item["type"] == "code_interpreter_call" and item["outputs"]:
                    result.append(time.perf_counter())
            elif event == "response.completed" and line.startswith("data: "):
                return created, time.perf_counter() - started, json.loads(line[6:])
    raise RuntimeError("the stream ended before response.completed")


def logs_of(final: dict) -> str:
    call = next(i for i in final["response"]["output"] if i["type"] == "code_interpreter_call")
    return "".join(o.get("logs", "") for o in call["outputs"] or [])


def server_side(upstream: ScriptedUpstream, runs: int, concurrent: int) -> dict:
    server = Server(upstream)
    out: dict = {}
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120) as client:
            upstream.fallback = one_cell_model(CELL)
            container = client.post("/containers", json={"name": "bench"}).raise_for_status().json()
            body = {"model": MODEL, "input": "go", "include": ["code_interpreter_call.outputs"],
                    "tools": [{"type": "code_interpreter", "container": container["id"]}]}
            streamed(client, body)  # warm-up: starts the session
            time.sleep(3)  # let the server refill its warm sandbox pool
            created, completed = [], []
            for _ in range(runs):
                to_created, to_completed, final = streamed(client, body)
                created.append(to_created)
                completed.append(to_completed)
            assert "332833500" in logs_of(final), final
            out["created"], out["completed"] = created, completed

            upstream.fallback = one_cell_model(ONE_PLUS_ONE)
            round_trips, first_result, first_completed = [], [], []
            for _ in range(runs):
                started = time.perf_counter()
                client.get(server.base_url.removesuffix("/v1") + "/healthz").raise_for_status()
                client.get(server.base_url.removesuffix("/v1") + "/healthz").raise_for_status()
                round_trips.append(time.perf_counter() - started)
                started, result = time.perf_counter(), []
                made = client.post("/containers", json={"name": "fresh"}).raise_for_status().json()
                _, _, final = streamed(client, dict(body, tools=[{"type": "code_interpreter",
                                                                  "container": made["id"]}]), result)
                first_completed.append(time.perf_counter() - started)
                first_result.append(result[0] - started)
                assert logs_of(final).strip() == "2", final
                time.sleep(0.2)  # the warm pool refills between samples, as between users' requests
            out["round_trips"], out["first_result"], out["first_completed"] = round_trips, first_result, first_completed

            upstream.fallback = lambda b: (
                {"text": "Done."} if b["messages"][-1].get("role") == "tool" else
                {"tool_calls": [{"name": "python", "arguments": {
                    "code": f"print({b['messages'][-1]['content']} * 3)"}}]})

            def one(n: int) -> bool:
                made = client.post("/containers", json={"name": f"c{n}"}).raise_for_status().json()
                _, _, final = streamed(client, dict(body, input=str(n), tools=[
                    {"type": "code_interpreter", "container": made["id"]}]))
                return logs_of(final).strip() == str(n * 3)

            started = time.perf_counter()
            with ThreadPoolExecutor(concurrent) as pool:
                results = list(pool.map(one, range(1000, 1000 + concurrent)))
            out["concurrent"] = (sum(results), time.perf_counter() - started)
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    os.chdir(os.path.dirname(os.path.abspath(__file__)) + "/..")

    bare = asyncio.run(bare_cell(args.runs))
    upstream = ScriptedUpstream()
    try:
        direct, direct_first = direct_upstream(upstream, args.runs)
        got = server_side(upstream, args.runs, args.concurrent)
    finally:
        upstream.close()

    print(f"one-cell response, {args.runs} each; cell: {CELL!r}")
    print(f"  bare sandbox, running session        {summary(bare)}")
    print(f"  the two upstream calls, direct       {summary(direct)}")
    print(f"  response, streamed, to completed     {summary(got['completed'])}")
    print(f"  response, streamed, to created       {summary(got['created'])}")
    added = (percentile(got["completed"], 50) - percentile(bare, 50) - percentile(direct, 50)) * 1000
    print(f"added by the response at p50: {added:.1f} ms (target <= 15 ms: {'met' if added <= 15 else 'NOT met'})")
    print(f"new container to its first 1+1 result, {args.runs} each")
    print(f"  two HTTP round trips (GET /healthz)  {summary(got['round_trips'])}")
    print(f"  the first upstream call, direct      {summary(direct_first)}")
    print(f"  POST /containers + response, to the code call's result (its item done, logs included)")
    print(f"                                       {summary(got['first_result'])}")
    print(f"  POST /containers + response, to response.completed")
    print(f"                                       {summary(got['first_completed'])}")
    beyond = (percentile(got["first_result"], 50) - percentile(got["round_trips"], 50)
              - percentile(direct_first, 50)) * 1000
    print(f"result beyond the round trips and the upstream call before it, at p50: {beyond:.1f} ms "
          f"(target <= 10 ms: {'met' if beyond <= 10 else 'NOT met'})")
    beyond = (percentile(got["first_completed"], 50) - percentile(got["round_trips"], 50)
              - percentile(direct, 50)) * 1000
    print(f"response.completed beyond the round trips and both upstream calls, at p50: {beyond:.1f} ms")
    correct, seconds = got["concurrent"]
    print(f"{args.concurrent} containers running code at once: {correct}/{args.concurrent} correct "
          f"in {seconds:.1f} s")


if __name__ == "__main__":
    main()

"""Two API replicas against one on PostgreSQL: run throughput, GET-run latency under that load,
and how much later an event reaches a reader on the other replica than one on the replica that
runs it (the stored-events + NOTIFY path); and the run queue's added latency per run: one replica
with procrastinate against the same replica with the in-process worker (CODEINTERP_RUN_QUEUE=inprocess),
each on a fresh database of the same PostgreSQL.

    source scripts/postgres.sh  # or CODEINTERP_TEST_POSTGRES_URL=postgresql+asyncpg://...
    PYTHONPATH=src .venv/bin/python benchmarks/replicas.py [--runs 40] [--concurrency 8] [--cell-seconds 0.2] [--queue-runs 40]; postgres_stop

Each topology gets a fresh database and its own server processes (same machine). Runs: one
cell (the scripted model answers at once), created in turn on each replica (POST /threads/runs)
and polled on the next one (every 50 ms) until they end; `--concurrency` runs at a time.
Events: background responses created with `stream: true` on replica A while a reader follows
the same response (`GET /v1/responses/{id}?stream=true`) on replica B (on A itself with one
replica): the delay is when `response.completed` reached B minus when it reached A.
Queue: runs one at a time, each on a new thread, the model answering text at once (no cell):
streamed (this replica's own queue), from the POST to its `thread.run.in_progress` event; not
streamed (the shared queue: the job is taken and the run adopted), from the POST to `completed`
seen by polling every 5 ms.
"""

import argparse
import asyncio
import json
import os
import time

import httpx

from runs_common import API_KEY, MODEL, Server, ScriptedUpstream, one_cell_model, summary
from tests.helpers.postgres import fresh_postgres_database

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}
HEADERS = {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}


def cell(seconds: float) -> str:
    return f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n'worked'"


async def one_run(clients: list[httpx.AsyncClient], n: int, assistant_id: str, gets: list[float]) -> dict:
    create, poll = clients[n % len(clients)], clients[(n + 1) % len(clients)]
    run = (await create.post("/threads/runs", json={"assistant_id": assistant_id, "thread": {
        "messages": [{"role": "user", "content": "Work."}]}})).raise_for_status().json()
    while True:
        started = time.perf_counter()
        response = (await poll.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).raise_for_status()
        gets.append(time.perf_counter() - started)
        run = response.json()
        if run["status"] in TERMINAL:
            return run
        await asyncio.sleep(0.05)


async def throughput(clients, runs: int, concurrency: int) -> None:
    assistant = (await clients[0].post("/assistants", json={"model": MODEL, "tools": [{"type": "code_interpreter"}]})
                 ).raise_for_status().json()
    for n in range(2 * len(clients)):  # warm-up: every replica's sandboxes started
        await one_run(clients, n, assistant["id"], [])
    gets: list[float] = []
    limit = asyncio.Semaphore(concurrency)

    async def limited(n: int) -> dict:
        async with limit:
            return await one_run(clients, n, assistant["id"], gets)

    started = time.perf_counter()
    ended = await asyncio.gather(*[limited(n) for n in range(runs)])
    seconds = time.perf_counter() - started
    completed = sum(r["status"] == "completed" for r in ended)
    print(f"  runs: {completed}/{runs} completed in {seconds:.2f} s = {runs / seconds:.2f} runs/s "
          f"(concurrency {concurrency})")
    print(f"  GET run during the load: {summary(gets)}")


async def read_until_completed(client: httpx.AsyncClient, method: str, url: str, body: dict | None,
                               seen: dict, key: str) -> None:
    async with client.stream(method, url, json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if "response_id" not in seen and "response" in data:
                    seen["response_id"] = data["response"]["id"]
                    seen["created"].set()
                if data.get("type") in ("response.completed", "response.failed", "response.incomplete"):
                    seen[key] = time.perf_counter()
                    seen[key + " ended"] = data["type"] if data["type"] == "response.completed" else data
                    return
        seen[key + " ended"] = f"the stream ended without an end event (HTTP {response.status_code})"


async def event_delays(clients, responses: int) -> None:
    a, b = clients[0], clients[-1]
    delays = []
    for _ in range(responses):
        seen = {"created": asyncio.Event()}
        creator = asyncio.create_task(read_until_completed(
            a, "POST", "/responses", {"model": MODEL, "input": "Work.", "background": True, "stream": True,
                                      "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
            seen, "a"))
        await seen["created"].wait()
        await read_until_completed(b, "GET", f"/responses/{seen['response_id']}?stream=true", None, seen, "b")
        await creator
        if seen.get("a ended") != "response.completed" or seen.get("b ended") != "response.completed":
            raise SystemExit(f"a response did not complete: {seen}")
        delays.append(max(0.0, seen["b"] - seen["a"]))
    print(f"  response.completed on the follower after the creator: {summary(delays)}")


async def to_in_progress(client: httpx.AsyncClient, assistant_id: str) -> float:
    body = {"assistant_id": assistant_id, "stream": True, "thread": {"messages": [{"role": "user", "content": "Hi."}]}}
    started = time.perf_counter()
    took = None
    async with client.stream("POST", "/threads/runs", json=body) as response:
        async for line in response.aiter_lines():
            if took is None and line == "event: thread.run.in_progress":
                took = time.perf_counter() - started
    return took


async def to_completed(client: httpx.AsyncClient, assistant_id: str) -> float:
    started = time.perf_counter()
    run = (await client.post("/threads/runs", json={"assistant_id": assistant_id, "thread": {
        "messages": [{"role": "user", "content": "Hi."}]}})).raise_for_status().json()
    while run["status"] not in TERMINAL:
        await asyncio.sleep(0.005)
        run = (await client.get(f"/threads/{run['thread_id']}/runs/{run['id']}")).raise_for_status().json()
    if run["status"] != "completed":
        raise SystemExit(f"a run did not complete: {run}")
    return time.perf_counter() - started


async def queue_latency(server: Server, runs: int) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers=HEADERS, timeout=120) as client:
        assistant = (await client.post("/assistants", json={"model": MODEL, "tools": [{"type": "code_interpreter"}]})
                     ).raise_for_status().json()
        for _ in range(5):  # warm-up
            await to_in_progress(client, assistant["id"])
            await to_completed(client, assistant["id"])
        streamed = [await to_in_progress(client, assistant["id"]) for _ in range(runs)]
        polled = [await to_completed(client, assistant["id"]) for _ in range(runs)]
    print(f"  streamed run, POST to thread.run.in_progress: {summary(streamed)}")
    print(f"  run not streamed, POST to completed (polled): {summary(polled)}")


async def bench(servers: list[Server], runs: int, concurrency: int, responses: int) -> None:
    clients = [httpx.AsyncClient(base_url=s.base_url, headers=HEADERS, timeout=120) for s in servers]
    try:
        await throughput(clients, runs, concurrency)
        await event_delays(clients, responses)
    finally:
        for client in clients:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cell-seconds", type=float, default=0.2)
    parser.add_argument("--responses", type=int, default=10)
    parser.add_argument("--queue-runs", type=int, default=40)
    args = parser.parse_args()
    postgres = os.environ.get("CODEINTERP_TEST_POSTGRES_URL")
    if not postgres:
        raise SystemExit("set CODEINTERP_TEST_POSTGRES_URL (source scripts/postgres.sh)")
    upstream = ScriptedUpstream()
    try:
        upstream.fallback = lambda body: {"text": "Hello."}
        for queue in ("inprocess", "procrastinate"):
            with fresh_postgres_database(postgres) as url:
                server = Server(upstream, {"CODEINTERP_DATABASE_URL": url, "CODEINTERP_RUN_QUEUE": queue,
                                           "CODEINTERP_SANDBOX_WARM_SESSIONS": "4"})
                try:
                    print(f"1 replica, run queue {queue}:")
                    asyncio.run(queue_latency(server, args.queue_runs))
                finally:
                    server.stop()
        upstream.fallback = one_cell_model(cell(args.cell_seconds))
        for count in (1, 2):
            with fresh_postgres_database(postgres) as url:
                servers = [Server(upstream, {"CODEINTERP_DATABASE_URL": url, "CODEINTERP_SANDBOX_WARM_SESSIONS": "4"})
                           for _ in range(count)]
                try:
                    print(f"{count} replica(s):")
                    asyncio.run(bench(servers, args.runs, args.concurrency, args.responses))
                finally:
                    for server in servers:
                        server.stop()
    finally:
        upstream.close()


if __name__ == "__main__":
    main()

"""50 runs on 50 threads at once: do they all complete, and how fast does the server answer
`GET /v1/threads/{id}/runs/{id}` meanwhile? Target: p99 under 100 ms during the load.

    .venv/bin/python benchmarks/runs_concurrency.py [--runs 50] [--cell-seconds 1.0]

The scripted upstream answers at once; each run executes one cell that works for about
`--cell-seconds` (a loop, so the sandboxes use CPU like real code). Every run is polled by its
own client task while the runs go on, as often as the server's `openai-poll-after-ms` header
asks, as the SDKs' `create_and_poll` do.

The server's answer time is measured by a probe: a process of its own that sends one GET at a
time (every 10 ms) throughout the loads. The pollers' own figures are printed too; they also
hold the time their process (50 pollers, the load's requests and the scripted upstream, all
on one Python interpreter) takes to get to each answer. The baseline is the probe against
the idle server, in the same run.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time

import httpx

from runs_common import MODEL, Server, ScriptedUpstream, one_cell_model, percentile, summary

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}


def cell(seconds: float) -> str:
    return ("import time\n"
            f"end = time.monotonic() + {seconds}\n"
            "n = 0\n"
            "while time.monotonic() < end:\n"
            "    n += 1\n"
            "'worked'")


async def timed_get(client: httpx.AsyncClient, url: str, latencies: list[float]) -> httpx.Response:
    started = time.perf_counter()
    response = await client.get(url)
    latencies.append(time.perf_counter() - started)
    return response.raise_for_status()


async def poll_until_done(client: httpx.AsyncClient, thread_id: str, run_id: str,
                          latencies: list[float]) -> dict:
    """Poll as the SDKs' `create_and_poll` do: again after `openai-poll-after-ms` (else 1 s)."""
    while True:
        response = await timed_get(client, f"/threads/{thread_id}/runs/{run_id}", latencies)
        run = response.json()
        if run["status"] in TERMINAL:
            return run
        await asyncio.sleep(int(response.headers.get("openai-poll-after-ms", 1000)) / 1000)


async def run_all(client: httpx.AsyncClient, assistant_id: str, threads: list[str],
                  latencies: list[float]) -> tuple[list[dict], float, float]:
    """Create a run on every thread at once and poll each until it ends: (runs, created in, finished in)."""
    started = time.perf_counter()
    created = await asyncio.gather(*[client.post(f"/threads/{t}/runs", json={"assistant_id": assistant_id})
                                     for t in threads])
    created_in = time.perf_counter() - started
    finished = await asyncio.gather(*[poll_until_done(client, t, r.raise_for_status().json()["id"], latencies)
                                      for t, r in zip(threads, created)])
    return finished, created_in, time.perf_counter() - started


class Probe:
    """This file run with --probe: GETs one run again and again until told to stop."""

    def __init__(self, server: Server, thread_id: str, run_id: str) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--probe", server.base_url,
                                         server.headers["Authorization"], f"/threads/{thread_id}/runs/{run_id}"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[float]:
        out, _ = self.process.communicate("stop\n", timeout=60)
        return json.loads(out)


def probe(base_url: str, authorization: str, path: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, headers={"Authorization": authorization}, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(path).raise_for_status()
            latencies.append(time.perf_counter() - started)
            stop.wait(0.01)
    print(json.dumps(latencies))


def report(label: str, finished: list[dict], created_in: float, wall: float, latencies: list[float]) -> bool:
    statuses: dict[str, int] = {}
    for run in finished:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    print(f"{label}: all created in {created_in * 1000:.0f} ms; all finished in {wall:.2f} s; statuses: {statuses}")
    print(f"  GET run as its pollers saw it            {summary(latencies)}")
    return statuses == {"completed": len(finished)}


async def bench(server: Server, runs: int) -> None:
    limits = httpx.Limits(max_connections=runs + 10, max_keepalive_connections=runs + 10)
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.headers, timeout=120,
                                 limits=limits) as client:
        assistant = (await client.post("/assistants", json={"model": MODEL, "tools": [{"type": "code_interpreter"}]})
                     ).raise_for_status().json()
        threads = [(await client.post("/threads", json={})).raise_for_status().json()["id"] for _ in range(runs + 1)]

        # Baseline: one finished run, read again and again with the server idle.
        first = (await client.post(f"/threads/{threads[-1]}/runs", json={"assistant_id": assistant["id"]})
                 ).raise_for_status().json()
        await poll_until_done(client, threads[-1], first["id"], [])
        idle_probe = Probe(server, threads[-1], first["id"])
        await asyncio.sleep(3)
        idle = idle_probe.stop()
        print(f"{runs} runs on {runs} threads at once")
        print(f"  GET run, idle server (probe, baseline)  {summary(idle)}")
        load_probe = Probe(server, threads[-1], first["id"])

        # The load: a run created on every thread at once, each polled by its own task. The first
        # round starts a sandbox session per thread; the second finds them running.
        cold: list[float] = []
        ok = report("new threads (a session starts for each)", *await run_all(client, assistant["id"],
                                                                               threads[:runs], cold), cold)
        warm: list[float] = []
        ok = report("same threads again (sessions running)", *await run_all(client, assistant["id"],
                                                                             threads[:runs], warm), warm) and ok
        loaded = load_probe.stop()
    print(f"  GET run during both loads (probe)        {summary(loaded)}")
    p99 = percentile(loaded, 99) * 1000
    print(f"server's p99 answer to GET run during the loads: {p99:.1f} ms "
          f"(target < 100 ms: {'met' if p99 < 100 else 'NOT met'}); all completed: {'yes' if ok else 'NO'}")


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:
        probe(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--cell-seconds", type=float, default=1.0)
    args = parser.parse_args()
    upstream = ScriptedUpstream()
    upstream.fallback = one_cell_model(cell(args.cell_seconds))
    server = Server(upstream)
    try:
        asyncio.run(bench(server, args.runs))
    finally:
        server.stop()
        upstream.close()


if __name__ == "__main__":
    main()

"""A new API container to the result of its first `1+1`, through the containers service (what the
Responses API calls: the container's row made, `executor()`, `execute`), beside a bare sandbox
session of the same backend to its first `1+1` measured in the same run; then many containers
running code at once, every answer checked. Each sample waits for the warm sessions to be started
again first, for both alike.

    .venv/bin/python benchmarks/containers_first_result.py [--containers 30] [--concurrent 50]

Target (issue 12, through the API once Responses answers): p50 at most 10 ms beyond the HTTP round trip.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sandbox_common import line  # also puts this checkout's src on sys.path

from codeinterp.config import Settings
from codeinterp.runs.containers import Containers
from codeinterp.sandbox import create_backend
from codeinterp.store import containers as container_store
from codeinterp.store import files as file_store
from codeinterp.store.db import Database, run_migrations_async

PROJECT = "proj_bench"


async def warm(backend) -> None:
    while backend.warm_ready < backend.settings.sandbox_warm_sessions:
        await asyncio.sleep(0.01)


async def container_first_result(db: Database, containers: Containers, code: str = "1+1",
                                 expect: str = "2\n") -> float:
    started = time.perf_counter()
    async with db.session() as session:
        row = await container_store.create_container(session, PROJECT, "bench", "1g", None, [], 65536)
    executor = await containers.executor(PROJECT, row.id)
    result, _, _ = await executor.execute(code, None, lambda event: None, None)
    ms = (time.perf_counter() - started) * 1000
    assert result.status == "ok" and result.text == expect, result.outputs
    return ms


async def bare_first_result(backend) -> float:
    started = time.perf_counter()
    session = await backend.create_session()
    result = await session.execute("1+1")
    ms = (time.perf_counter() - started) * 1000
    assert result.text == "2\n"
    await session.close()
    return ms


async def main(args) -> None:
    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), project_max_sessions=1000, sandbox_max_sessions=1000)
        await run_migrations_async(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        await db.connect()
        file_store.configure_blobs(settings.blob_dir)
        backend = create_backend(settings)
        await backend.start()
        containers = Containers(db, backend, settings)
        await containers.start()
        try:
            service, bare = [], []
            for _ in range(args.containers):
                await warm(backend)
                bare.append(await bare_first_result(backend))
                await warm(backend)
                service.append(await container_first_result(db, containers))
            print(f"new container to its first 1+1 ({args.containers} each, warm sessions ready):")
            print(line("containers service (row, executor, execute)", service))
            print(line("bare sandbox session (create_session, execute)", bare))
            await containers.close()
            await warm(backend)
            started = time.perf_counter()
            answers = await asyncio.gather(*(container_first_result(
                db, containers, f"sum(range({n}))", f"{sum(range(n))}\n") for n in range(args.concurrent)))
            wall = (time.perf_counter() - started) * 1000
            print(f"{args.concurrent} new containers running code at once: all correct, wall {wall:.0f} ms")
            print(line("each, to its answer", answers))
        finally:
            await containers.close()
            await backend.stop()
            await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=50)
    asyncio.run(main(parser.parse_args()))

"""Per-run (or per-response) event fan-out: the engine publishes, any number of SSE responses read.

A channel holds every event of one leg of a run (from `thread.run.created`, or from the
resumption after `submit_tool_outputs`, to the event that ends the leg), so a reader that
starts late still sees the whole leg in order. A leg ends with a terminal run event or
`thread.run.requires_action`; readers stop there.
"""

import asyncio
import threading
from collections.abc import AsyncIterator

from codeinterp.store.text import json_text

Event = tuple[str, str]  # (event name, its data as JSON text)


def event(name: str, data: dict) -> Event:
    """The event as readers get it (later changes to `data` do not reach them)."""
    return name, json_text(data)

LEG_END_EVENTS = frozenset({
    "thread.run.completed",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
    "thread.run.incomplete",
    "thread.run.requires_action",
})


class EventChannel:
    """Published to on the run worker's event loop, read on the HTTP server's: readers wait on a
    future of their own loop, which `publish` completes through that loop."""

    def __init__(self, end_events: frozenset[str] = LEG_END_EVENTS) -> None:
        self.end_events = end_events  # an event that ends what the channel carries
        self._events: list[Event] = []
        self._closed = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, name: str, data: dict) -> Event | None:
        """Publish the event; returns it as readers get it (None on a closed channel)."""
        encoded = event(name, data)
        with self._lock:
            if self._closed:
                return None
            self._events.append(encoded)
            if name in self.end_events:
                self._closed = True
        self._wake()
        return encoded

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def subscribe(self, start: int = 0) -> AsyncIterator[list[Event]]:
        """The leg's events from `start`, in batches: each batch holds every event published
        since the last one (the reader sends them together)."""
        loop = asyncio.get_running_loop()
        position = start
        while True:
            if position < len(self._events):
                batch = self._events[position:]
                position += len(batch)
                yield batch
            with self._lock:
                if position < len(self._events):
                    continue
                if self._closed:
                    return
                future = loop.create_future()
                self._waiters.append((loop, future))
            await future


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)

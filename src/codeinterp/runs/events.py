"""Per-run event fan-out: the engine publishes, any number of SSE responses read.

A channel holds every event of one leg of a run (from `thread.run.created`, or from the
resumption after `submit_tool_outputs`, to the event that ends the leg), so a reader that
starts late still sees the whole leg in order. A leg ends with a terminal run event or
`thread.run.requires_action`; readers stop there.
"""

import asyncio
import copy
from collections.abc import AsyncIterator

Event = tuple[str, dict]

LEG_END_EVENTS = frozenset({
    "thread.run.completed",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.expired",
    "thread.run.incomplete",
    "thread.run.requires_action",
})


class EventChannel:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, name: str, data: dict) -> None:
        if self._closed:
            return
        self._events.append((name, copy.deepcopy(data)))  # later changes must not reach readers
        if name in LEG_END_EVENTS:
            self._closed = True
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def subscribe(self, start: int = 0) -> AsyncIterator[Event]:
        position = start
        while True:
            while position < len(self._events):
                yield self._events[position]
                position += 1
            if self._closed:
                return
            await self._changed.wait()

"""Stopping a run or a response that this process drives (both engines do it the same way)."""

import asyncio
import logging
from typing import Protocol

from codeinterp.runs.turn_loop import TurnLoop

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 2.0  # after a cancel, the task is cancelled anyway unless it is finishing


class Driven(Protocol):
    """What the engines keep of a run or response they drive (`ActiveRun`, `ActiveResponse`)."""

    task: asyncio.Task | None
    turn: TurnLoop | None
    cancel_requested: bool
    finishing: bool  # being ended: cancelling the task now would interrupt that

    @property
    def executing(self) -> bool: ...


def request_cancel(driven: Driven) -> None:
    """Stop it: a running cell is interrupted (the turn loop then ends it, as cancelled), else its
    task is cancelled; CANCEL_GRACE_SECONDS later its task is cancelled anyway, unless finishing."""
    driven.cancel_requested = True
    if driven.executing:
        asyncio.create_task(interrupt(driven))
    elif driven.task is not None:
        driven.task.cancel()
    asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, _cancel_task, driven)


async def interrupt(driven: Driven) -> None:
    """Interrupt the cell it runs now (a failure is logged: the grace timer still ends it)."""
    try:
        await driven.turn.executor.interrupt()
    except Exception:
        log.warning("interrupting the code of a cancelled run or response failed", exc_info=True)


def _cancel_task(driven: Driven) -> None:
    if driven.task is not None and not driven.task.done() and not driven.finishing:
        driven.task.cancel()

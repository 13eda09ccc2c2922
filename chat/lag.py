"""How far behind this event loop runs: a ticker that measures how late it wakes.

A loop saturated with work runs every callback late by the length of its
ready queue. The send path reads `loop_lag()` to refuse new sends
(`overloaded`) before they would wait behind seconds of queued work.
"""

import asyncio
import time
import weakref

TICK = 0.05  # seconds between wake-ups: lag is known to within this
_lag: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float]" = weakref.WeakKeyDictionary()
_last: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float]" = weakref.WeakKeyDictionary()
_tasks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def loop_lag() -> float:
    """Seconds the running loop's last wake-up came late (0 until measured).
    Starts the loop's ticker on first use."""
    loop = asyncio.get_running_loop()
    if loop not in _tasks:
        _tasks[loop] = loop.create_task(_tick(loop), name="chat-loop-lag")
    return _lag.get(loop, 0.0)


async def _tick(loop: asyncio.AbstractEventLoop) -> None:
    while True:
        asked = time.monotonic()
        await asyncio.sleep(TICK)
        late = time.monotonic() - asked - TICK
        # The lesser of the last two: one stall (a collection, a slow call)
        # is not a backlog; a loop late tick after tick is.
        _lag[loop] = min(late, _last.get(loop, 0.0))
        _last[loop] = late

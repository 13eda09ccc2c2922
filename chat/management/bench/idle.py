"""An idle server: memory per open socket, and one message's latency from
send to delivery."""

import asyncio
import sys

from chat.management.bench.core import TIMEOUT, Run, rooms_fill, rss_kib


async def idle(run: Run) -> dict:
    """Open `sockets` sockets, in rooms of 10, and hold them: the servers'
    memory per socket and how fast they accept."""
    spec = run.spec
    before = rss_kib(run.pids)
    clients, connect_rate = await run.connect(spec["sockets"], spec["prefix"])
    await asyncio.gather(*(c.join(f"{spec['prefix']}{i // 10}") for i, c in enumerate(clients)))
    after = rss_kib(run.pids)
    per_socket = None
    if before is not None and after is not None:
        per_socket = round((after - before) / len(clients), 1)
    return {
        "connections": len(clients),
        "connects_per_s": round(connect_rate),
        "rss_kib": after,
        "kib_per_socket": per_socket,
    }


async def latency(run: Run) -> dict:
    """An idle server, two members of one room: `messages` single messages,
    each sent when the one before has been delivered. Send to delivery."""
    spec = run.spec
    await rooms_fill(run, 1, 2, spec["prefix"])
    [(room, [sender, _])] = run.members.items()
    run.expected = 0
    for i in range(spec["messages"]):
        run.expected = 2 * (i + 1)  # the sender gets its own message too
        run.all_delivered.clear()
        await run.send_recorded(sender, room)
        await asyncio.wait_for(run.all_delivered.wait(), TIMEOUT)
        await asyncio.sleep(0.01)  # idle between messages, as a conversation is
    run.expected = sys.maxsize
    await run.settle()
    return {**run.delivery_report(), "connections": 2}

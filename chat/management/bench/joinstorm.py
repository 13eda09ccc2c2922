"""A join storm: many sockets join one room with history at once, as after a
server restarts and its clients come back."""

import asyncio

from chat.management.bench.core import Run, latency_ms, rss_kib


async def joinstorm(run: Run) -> dict:
    """`history` messages in a room, then `clients` sockets join it at once:
    how long each join takes to answer with its page of history."""
    spec = run.spec
    room = f"{spec['prefix']}room"
    [seeder], _ = await run.connect(1, f"{spec['prefix']}seed")
    await seeder.join(room)
    run.acked[room] = set()
    for _ in range(spec["history"]):
        await run.send_recorded(seeder, room)
    clients, connect_rate = await run.connect(spec["clients"], spec["prefix"])
    replies = await asyncio.gather(*(c.join(room) for c in clients))
    short = sum(1 for frame, _ in replies if len(frame["messages"]) < spec["history"])
    return {
        "connections": len(clients) + 1,
        "connects_per_s": round(connect_rate),
        "joins": len(replies),
        "short_history": short,
        **latency_ms([took for _, took in replies]),
        "rss_kib": rss_kib(run.pids),
    }

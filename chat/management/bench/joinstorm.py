"""A join storm: many sockets join one room with history at once, as after a
server restarts and its clients come back."""

import asyncio
import time

from chat.management.bench.core import TIMEOUT, Run, latency_ms, rss_kib


async def joinstorm(run: Run) -> dict:
    """`history` messages in a room, then `clients` sockets join it at once:
    how long each join takes to answer with its page of history."""
    spec = run.spec
    room = f"{spec['prefix']}room"
    [seeder], _ = await run.connect(1, f"{spec['prefix']}seed")
    await seeder.join(room)
    run.acked[room] = set()
    run.expected = spec["history"]  # the seeder's own copies: the room's history is in place
    for _ in range(spec["history"]):
        await run.send_recorded(seeder, room)
    await asyncio.wait_for(run.all_delivered.wait(), TIMEOUT)
    clients, connect_rate = await run.connect(spec["clients"], spec["prefix"])
    cpu = run.cpu_start()
    started = time.perf_counter()
    replies = await asyncio.gather(*(c.join(room) for c in clients))
    storm_s = time.perf_counter() - started
    short = sum(1 for frame, _ in replies if frame["message_count"] < spec["history"])
    return {
        "connections": len(clients) + 1,
        "connects_per_s": round(connect_rate),
        "joins": len(replies),
        "short_history": short,
        **latency_ms([took for _, took in replies]),
        "storm_s": round(storm_s, 3),  # the first join sent to the last joined received
        "server_cpu": run.cpu_share(cpu),
        "rss_kib": rss_kib(run.pids),
    }

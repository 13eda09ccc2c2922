"""A big room: thousands of members join one room; then one sends."""

import asyncio
import time

from chat.management.bench.core import Client, Run, latency_ms, rss_kib


async def bigroom(run: Run) -> dict:
    """`bigroom` members join one room (100 at a time); then one of them sends
    a message a second for `duration` seconds. Join time, delivery latency,
    and the largest frame any member received."""
    spec = run.spec
    room, size = f"{spec['prefix']}room", spec["bigroom"]
    clients, connect_rate = await run.connect(size, spec["prefix"])
    gate = asyncio.Semaphore(100)

    async def join(client: Client) -> float:
        async with gate:
            return (await client.join(room))[1]

    started = time.perf_counter()
    join_cpu = run.cpu_start()
    joins = await asyncio.gather(*(join(c) for c in clients))
    joined_in = time.perf_counter() - started
    join_server_cpu = run.cpu_share(join_cpu)
    join_generator_cpu = run.generator_cpu
    run.members[room], run.acked[room] = clients, set()
    rss_loaded = rss_kib(run.pids)
    cpu = run.cpu_start()
    for _ in range(max(1, int(spec["duration"]))):
        began = time.perf_counter()
        await run.send_recorded(clients[0], room)
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - began)))
    await run.settle()
    return {
        **run.delivery_report(),
        "server_cpu": run.cpu_share(cpu),
        "connections": size,
        "connects_per_s": round(connect_rate),
        "joins_s": round(joined_in, 2),
        "join_server_cpu": join_server_cpu,
        "join_generator_cpu": join_generator_cpu,
        **{f"join_{k}": v for k, v in latency_ms(joins).items()},
        "max_frame_kib": round(max(c.max_frame for c in clients) / 1024, 1),
        "rss_kib": rss_loaded,
    }

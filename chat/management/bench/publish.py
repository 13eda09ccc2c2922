"""Publish: many small rooms, every member sending back to back."""

import asyncio
import time

from chat.management.bench.core import Client, Run, latency_ms, rooms_fill, rss_kib


async def publish(run: Run) -> dict:
    """Many small rooms, every member sending back to back (`window` unacked at a
    time each): how many messages per second are persisted and acknowledged."""
    spec = run.spec
    rooms, members, duration = spec["rooms"], spec["members"], spec["duration"]
    connect_rate = await rooms_fill(run, rooms, members, spec["prefix"])
    acks: list[float] = []
    stop = time.perf_counter() + duration

    async def sender(client: Client, room: str) -> None:
        while time.perf_counter() < stop:
            took = await run.send_recorded(client, room)
            if took is not None:
                acks.append(took)

    started = time.perf_counter()
    cpu = run.cpu_start()
    await asyncio.gather(
        *(
            sender(client, room)
            for room, clients in run.members.items()
            for client in clients
            for _ in range(spec["window"])
        )
    )
    elapsed = time.perf_counter() - started
    server_cpu = run.cpu_share(cpu)
    rss_loaded = rss_kib(run.pids)
    await run.settle()
    report = run.delivery_report()
    return {
        **report,
        "acked": len(acks),
        "acked_per_s": round(len(acks) / elapsed),
        "server_cpu": server_cpu,
        **{f"ack_{k}": v for k, v in latency_ms(acks).items()},
        "connections": rooms * members,
        "connects_per_s": round(connect_rate),
        "rss_kib": rss_loaded,
    }

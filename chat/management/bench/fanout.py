"""Fan-out: rooms of members, one sender each at an even pace; and overload,
the same offered at twice what the server holds."""

import asyncio
import time

from chat.management.bench.core import Client, Run, latency_ms, rooms_fill, rss_kib


async def fanout(run: Run) -> dict:
    """Rooms x members; the first member of each room sends at an even pace, so
    that `rate` deliveries per second are offered in all."""
    spec = run.spec
    rooms, members, duration = spec["rooms"], spec["members"], spec["duration"]
    connect_rate = await rooms_fill(run, rooms, members, spec["prefix"])
    rss_loaded = rss_kib(run.pids)
    interval = rooms * members / spec["rate"]  # seconds between one room's messages

    async def sender(room: str, offset: float) -> None:
        client = run.members[room][0]
        sends = []
        start = time.perf_counter() + offset
        for i in range(max(1, int(duration / interval))):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            sends.append(asyncio.create_task(run.send_recorded(client, room)))
        await asyncio.gather(*sends)

    cpu = run.cpu_start()
    await asyncio.gather(
        *(sender(room, i * interval / rooms) for i, room in enumerate(run.members))
    )
    await run.settle()
    return {
        **run.delivery_report(),
        "server_cpu": run.cpu_share(cpu),
        "offered_per_s": spec["rate"],
        "connections": rooms * members,
        "connects_per_s": round(connect_rate),
        "rss_kib": rss_loaded,
    }


async def overload(run: Run) -> dict:
    """Fan-out offered at `rate` (twice what the server holds): how long acks
    take, refusals (`overloaded`, resent after retry_after), and loss."""
    acks: list[float] = []
    send = run.send_recorded

    async def timed(client: Client, room: str) -> float | None:
        took = await send(client, room)
        if took is not None:
            acks.append(took)
        return took

    run.send_recorded = timed  # type: ignore[method-assign]
    report = await fanout(run)
    return {
        **report,
        "refused": len(run.refusals),
        "refused_without_retry_after": sum(1 for r in run.refusals if not r.get("retry_after")),
        **{f"ack_{k}": v for k, v in latency_ms(acks).items()},
    }

"""The load generator of `manage.py chatbench`: drives running servers over
real WebSockets and prints what it measured as one JSON object.

It runs in a process of its own (pinned to its own core by chatbench), so
the server's costs and the generator's do not share a CPU. Clients are
guests, spread round-robin over the servers' URLs. Every workload checks
delivery by seq: a message acked to its sender that a member of its room
never received is lost; one a member received twice is doubled.

    python -m chat.management.loadgen '{"workload": "fanout", "urls": [...], ...}'
"""

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import websockets

DRAIN_SECONDS = 10.0  # after the last send, how long deliveries may still arrive
TIMEOUT = 300  # for one handshake, join or ack: a saturated server is slow, not broken


def open_files_max() -> None:
    """Lift the soft limit on open files to the hard one: a socket is a descriptor."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pids: list[int]) -> int | None:
    """The servers' resident memory, summed; None when they are not local."""
    if not pids:
        return None
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(status.split("VmRSS:")[1].split()[0])
    return total


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU time the servers have used (user + system), summed; None when not local."""
    if not pids:
        return None
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Client:
    """One socket: sends frames, and records every message and ack it receives."""

    def __init__(self, ws, run: "Run") -> None:
        self.ws = ws
        self.run = run
        self.seen: dict[str, Counter] = {}
        self.waiting: dict[str, asyncio.Future] = {}  # a client_id or "joined:<room>"
        self.max_frame = 0  # bytes of the largest frame received
        self.reader = asyncio.create_task(self.read())

    @classmethod
    async def open(cls, url: str, name: str, run: "Run") -> "Client":
        ws = await websockets.connect(
            f"{url}?name={name}", compression=None, max_size=2**20, open_timeout=TIMEOUT
        )
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        return cls(ws, run)

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                self.max_frame = max(self.max_frame, len(raw))
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message":
                    self.seen[frame["room"]][frame["seq"]] += 1
                    self.run.delivered(now - float(frame["body"]), now)
                elif kind == "ack":
                    self.resolve(frame["client_id"], (frame["seq"], now))
                elif kind == "joined":
                    self.seen.setdefault(frame["room"], Counter())
                    self.resolve(f"joined:{frame['room']}", (frame, now))
                elif kind == "error":
                    if frame["code"] == "overloaded":
                        self.run.refusals.append(frame)
                    else:
                        self.run.errors.append(frame)
                    self.resolve(frame.get("ref") or "", (frame, now))
        except websockets.ConnectionClosed:
            pass

    def resolve(self, key: str, value: object) -> None:
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    def expect(self, key: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    async def join(self, room: str) -> tuple[dict, float]:
        """Join a room; returns the `joined` frame and the seconds it took."""
        reply = self.expect(f"joined:{room}")
        started = time.perf_counter()
        await self.ws.send(json.dumps({"type": "join", "room": room}))
        frame, at = await asyncio.wait_for(reply, TIMEOUT)
        return frame, at - started

    async def send(self, room: str) -> tuple[int | None, float]:
        """Send a message stamped with its send time; returns (seq, seconds to
        ack). Refused as `overloaded`, it goes again (the same client_id)
        after `retry_after`, as the browser and chat-client do."""
        client_id = str(uuid.uuid4())
        started = time.perf_counter()
        frame = {"type": "send", "room": room, "body": repr(started), "client_id": client_id}
        while True:
            reply = self.expect(client_id)
            await self.ws.send(json.dumps(frame))
            answer, at = await asyncio.wait_for(reply, TIMEOUT)
            if isinstance(answer, dict) and answer.get("code") == "overloaded":
                await asyncio.sleep(answer["retry_after"])
                continue
            return (None if isinstance(answer, dict) else answer), at - started


class Run:
    """What one workload measured."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.urls: list[str] = spec["urls"]
        self.pids: list[int] = spec.get("pids", [])
        self.latencies: list[float] = []
        self.first_send: float | None = None
        self.last_delivery = 0.0
        self.errors: list[dict] = []
        self.refusals: list[dict] = []  # `overloaded`, resent
        self.acked: dict[str, set[int]] = {}
        self.unacked = 0
        self.members: dict[str, list[Client]] = {}
        self.clients: list[Client] = []
        self.expected = sys.maxsize  # deliveries awaited by settle()
        self.all_delivered = asyncio.Event()

    def cpu_start(self) -> tuple[float, float | None]:
        return time.perf_counter(), cpu_seconds(self.pids)

    def cpu_share(self, start: tuple[float, float | None]) -> float | None:
        """The servers' CPU use since `start`, in cores (1.0: one core busy)."""
        wall, cpu = start
        now = cpu_seconds(self.pids)
        if cpu is None or now is None:
            return None
        return round((now - cpu) / (time.perf_counter() - wall), 2)

    def delivered(self, latency: float, at: float) -> None:
        self.latencies.append(latency)
        self.last_delivery = at
        if len(self.latencies) >= self.expected:
            self.all_delivered.set()

    async def connect(self, count: int, prefix: str) -> tuple[list[Client], float]:
        """Open `count` sockets, 100 at a time; returns them and the connects per second."""
        gate = asyncio.Semaphore(100)

        async def one(i: int) -> Client:
            async with gate:
                return await Client.open(self.urls[i % len(self.urls)], f"{prefix}{i}", self)

        started = time.perf_counter()
        clients = await asyncio.gather(*(one(i) for i in range(count)))
        self.clients += clients
        return clients, count / (time.perf_counter() - started)

    async def send_recorded(self, client: Client, room: str) -> float | None:
        if self.first_send is None:
            self.first_send = time.perf_counter()
        try:
            seq, took = await client.send(room)
        except TimeoutError:
            self.unacked += 1
            return None
        if seq is None:
            self.unacked += 1
            return None
        self.acked[room].add(seq)
        return took

    async def settle(self) -> None:
        """Wait until the members hold as many messages as were acked to their
        rooms, or DRAIN_SECONDS pass."""
        self.expected = sum(len(self.acked[room]) * len(m) for room, m in self.members.items())
        if len(self.latencies) < self.expected:
            try:
                await asyncio.wait_for(self.all_delivered.wait(), DRAIN_SECONDS)
            except TimeoutError:
                pass  # what is still missing is reported as lost

    def missing(self) -> int:
        return sum(
            len(self.acked[room] - set(member.seen[room]))
            for room, members in self.members.items()
            for member in members
        )

    def doubled(self) -> int:
        return sum(
            sum(n - 1 for n in member.seen[room].values() if n > 1)
            for room, members in self.members.items()
            for member in members
        )

    def delivery_report(self) -> dict:
        elapsed = max(self.last_delivery - (self.first_send or 0), 1e-9)
        return {
            "deliveries": len(self.latencies),
            "deliveries_per_s": round(len(self.latencies) / elapsed),
            "lost": self.missing(),
            "doubled": self.doubled(),
            "unacked": self.unacked,
            **latency_ms(self.latencies),
        }


def latency_ms(samples: list[float]) -> dict:
    return {
        name: None if value is None else round(value * 1000, 2)
        for name, value in (
            ("p50_ms", percentile(samples, 0.50)),
            ("p99_ms", percentile(samples, 0.99)),
            ("max_ms", max(samples, default=None)),
        )
    }


async def rooms_fill(run: Run, rooms: int, members: int, prefix: str) -> float:
    """Connect rooms x members sockets and join each to its room; returns connects/s."""
    clients, rate = await run.connect(rooms * members, prefix)
    joins = []
    for r in range(rooms):
        room = f"{prefix}{r}"
        run.members[room] = clients[r * members : (r + 1) * members]
        run.acked[room] = set()
        joins += [member.join(room) for member in run.members[room]]
    await asyncio.gather(*joins)
    return rate


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
    joins = await asyncio.gather(*(join(c) for c in clients))
    joined_in = time.perf_counter() - started
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
        **{f"join_{k}": v for k, v in latency_ms(joins).items()},
        "max_frame_kib": round(max(c.max_frame for c in clients) / 1024, 1),
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


WORKLOADS = {
    "fanout": fanout,
    "publish": publish,
    "idle": idle,
    "joinstorm": joinstorm,
    "latency": latency,
    "bigroom": bigroom,
    "overload": overload,
}


async def main(spec: dict) -> dict:
    run = Run(spec)
    report = await WORKLOADS[spec["workload"]](run)
    report["errors"] = len(run.errors)
    if run.errors:
        report["first_error"] = run.errors[0]
    await asyncio.gather(*(c.ws.close() for c in run.clients), return_exceptions=True)
    return report


if __name__ == "__main__":
    open_files_max()
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))

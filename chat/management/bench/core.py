"""The load generator's core: a socket that records what it receives (`Client`),
what one workload measured (`Run`), and the figures every workload reports.

Clients are guests, spread round-robin over the servers' URLs. Delivery is
checked by seq: a message acked to its sender that a member of its room
never received is lost; one a member received twice is doubled.
"""

import asyncio
import json
import os
import re
import resource
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import websockets

# Frames as the server encodes them: their type first, compact.
JOINED = '{"type":"joined"'
PRESENCE = '{"type":"presence"'
ROOM = re.compile(r'"room":"([^"]*)"')
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

    counted = True  # whether the messages it receives count as deliveries

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
                if raw.startswith(PRESENCE):
                    continue  # nothing the generator measures
                if raw.startswith(JOINED):
                    # Read without parsing it whole: a storm's pages are most
                    # of what the generator receives, and its time is not the server's.
                    room = ROOM.search(raw).group(1)  # type: ignore[union-attr]
                    self.seen.setdefault(room, Counter())
                    joined = {"room": room, "message_count": raw.count('{"type":"message"')}
                    self.resolve(f"joined:{room}", (joined, now))
                    continue
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message" and self.counted:
                    self.seen[frame["room"]][frame["seq"]] += 1
                    self.run.delivered(now - float(frame["body"]), now)
                elif kind == "ack":
                    self.resolve(frame["client_id"], (frame["seq"], now))
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


class GraphQLClient(Client):
    """A GraphQL subscriber of the same server (chatbench --server graphql):
    its join is a `roomEvents` subscription (joined at its first Presence).
    It sends on a native socket of its own, so that the row measures the
    subscriptions' fan-out."""

    EVENTS = (
        "subscription($r: String!) { roomEvents(room: $r) "
        "{ __typename ... on Message { room seq body } } }"
    )
    sender: Client | None = None
    native = name = ""  # its server's native URL, and its name there

    @classmethod
    async def open(cls, url: str, name: str, run: "Run") -> "Client":
        ws = await websockets.connect(
            f"{url.replace('/ws/chat/', '/graphql/')}?name={name}",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            compression=None,
            max_size=2**20,
            open_timeout=TIMEOUT,
        )
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        client = cls(ws, run)
        client.native, client.name = url, name
        return client

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                self.max_frame = max(self.max_frame, len(raw))
                message = json.loads(raw)
                if message["type"] == "error":
                    self.run.errors.append(message)
                if message["type"] != "next":
                    continue
                event = message["payload"]["data"]["roomEvents"]
                if event["__typename"] == "Message":
                    self.seen[event["room"]][event["seq"]] += 1
                    self.run.delivered(now - float(event["body"]), now)
                else:
                    room = message["id"]
                    self.resolve(f"joined:{room}", ({"room": room, "message_count": 0}, now))
        except websockets.ConnectionClosed:
            pass

    async def join(self, room: str) -> tuple[dict, float]:
        self.seen.setdefault(room, Counter())
        reply = self.expect(f"joined:{room}")
        started = time.perf_counter()
        payload = {"query": self.EVENTS, "variables": {"r": room}}
        await self.ws.send(json.dumps({"id": room, "type": "subscribe", "payload": payload}))
        frame, at = await asyncio.wait_for(reply, TIMEOUT)
        return frame, at - started

    async def send(self, room: str) -> tuple[int | None, float]:
        if self.sender is None:
            self.sender = await Client.open(self.native, f"{self.name}-s", self.run)
            self.sender.counted = False
            await self.sender.join(room)
        return await self.sender.send(room)


class TutorialClient(Client):
    """A socket of the Channels tutorial's chat (chatbench's baseline:
    bench/tutorial.py): it joins a room by opening the room's URL, sends
    `{"message": …}` and gets `{"message": …}` back; no hello, ack or seq.
    Each message is told by its text (its send time), so that loss and
    doubling are still counted; a send counts as acked once it is written."""

    def __init__(self, url: str, run: "Run") -> None:
        self.url, self.run = url, run
        self.seen = {}
        self.waiting = {}
        self.max_frame = 0
        self.room = ""

    @classmethod
    async def open(cls, url: str, name: str, run: "Run") -> "Client":
        return cls(url, run)  # connected by its join

    # Its layer's pool of 100 Redis connections refuses (HTTP 500) a handshake
    # past 100 at once: its sockets connect 50 at a time.
    gate: asyncio.Semaphore | None = None

    async def join(self, room: str) -> tuple[dict, float]:
        if TutorialClient.gate is None:
            TutorialClient.gate = asyncio.Semaphore(50)
        async with TutorialClient.gate:
            started = time.perf_counter()
            self.ws = await websockets.connect(
                f"{self.url}{room}/", compression=None, max_size=2**20, open_timeout=TIMEOUT
            )
        self.room = room
        self.seen.setdefault(room, Counter())
        self.reader = asyncio.create_task(self.read())
        return {"room": room, "message_count": 0}, time.perf_counter() - started

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                stamp = json.loads(raw)["message"]
                self.seen[self.room][stamp] += 1
                self.run.delivered(now - float(stamp), now)
        except websockets.ConnectionClosed:
            pass

    async def send(self, room: str) -> tuple[int | None, float]:
        stamp = repr(time.perf_counter())
        await self.ws.send(json.dumps({"message": stamp}))
        return stamp, 0.0  # type: ignore[return-value]  # the stamp stands for a seq


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
        self.generator_started = 0.0
        self.generator_cpu: float | None = None
        self.all_delivered = asyncio.Event()

    def cpu_start(self) -> tuple[float, float | None]:
        self.generator_started = time.process_time()
        return time.perf_counter(), cpu_seconds(self.pids)

    def cpu_share(self, start: tuple[float, float | None]) -> float | None:
        """The servers' CPU use since `start`, in cores (1.0: one core busy);
        the generator's own is kept as `generator_cpu` (near 1.0, the
        figures measure the generator's lateness as much as the server's)."""
        wall, cpu = start
        elapsed = time.perf_counter() - wall
        self.generator_cpu = round((time.process_time() - self.generator_started) / elapsed, 2)
        now = cpu_seconds(self.pids)
        if cpu is None or now is None:
            return None
        return round((now - cpu) / elapsed, 2)

    def delivered(self, latency: float, at: float) -> None:
        self.latencies.append(latency)
        self.last_delivery = at
        if len(self.latencies) >= self.expected:
            self.all_delivered.set()

    async def connect(self, count: int, prefix: str) -> tuple[list[Client], float]:
        """Open `count` sockets, 100 at a time; returns them and the connects per second."""
        gate = asyncio.Semaphore(100)

        kinds = {"tutorial": TutorialClient, "graphql": GraphQLClient}
        kind = kinds.get(self.spec.get("protocol", ""), Client)

        async def one(i: int) -> Client:
            async with gate:
                return await kind.open(self.urls[i % len(self.urls)], f"{prefix}{i}", self)

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

"""Several real daphne processes sharing Redis and the database, driven by
resilient clients, while processes die and Redis restarts."""

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from chat.models import Message
from chat_client.client import ChatClient
from tests.conftest import REDIS_URL, ROOT, WsClient
from tests.factories import room_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

# Short sweeps and presence expiry, and no rate limit in the way of the load.
FAST = {
    "CHAT_SWEEP_SECONDS": "0.5",
    "CHAT_PRESENCE_TTL": "3",
    "CHAT_SEND_BURST": "100000",
    "CHAT_SEND_PER_MINUTE": "6000000",
}


@pytest.fixture
def lobby(make_user):
    return room_make(slug="lobby", creator=make_user("owner"))


@pytest.fixture
def pair(start_server, lobby):
    """Two server processes sharing the test database and Redis, under a prefix of their own."""

    def start(redis_url: str = REDIS_URL, **env: str):
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        return [
            start_server(redis_url=redis_url, CHANNEL_LAYER_PREFIX=prefix, **FAST, **env)
            for _ in range(2)
        ], prefix

    return start


def spread(servers, count: int, prefix: str = "c") -> list[ChatClient]:
    """Clients alternating between the servers; each fails over to the other."""
    clients = []
    for i in range(count):
        urls = [f"{server.ws_url}?name={prefix}{i}" for server in servers]
        clients.append(ChatClient(urls if i % 2 == 0 else urls[::-1], rooms=["lobby"]))
    return clients


@contextlib.asynccontextmanager
async def running(clients: list[ChatClient]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(client.run()) for client in clients]
    try:
        async with asyncio.timeout(20):
            await asyncio.gather(*(client.joined.wait() for client in clients))
        yield
    finally:
        await asyncio.gather(*(client.stop() for client in clients))
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait for a condition over several clients, checking every 50 ms."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - a condition over several clients' state
            await asyncio.sleep(0.05)


async def stream(client: ChatClient, count: int, pause: float) -> None:
    for i in range(count):
        await client.send("lobby", f"{client.urls[0][-3:]} #{i}")
        await asyncio.sleep(pause)  # pacing the load, not waiting for anything


async def assert_every_member_holds_every_message_once(
    clients: list[ChatClient], sent: int, other_acks: list[int] = ()
) -> None:
    """Every send acked once with gapless seqs; every client holds exactly those,
    with no seq sent twice on one connection; the database stores each once."""
    for client in clients:
        await client.wait_for(lambda c=client: not c.outbox, timeout=60)
    acked = sorted([*(seq for c in clients for seq in c.acked.values()), *other_acks])
    assert acked == list(range(1, sent + 1)), "every send acked once, seqs gapless"
    expected = set(acked)
    for client in clients:
        await client.wait_for(lambda c=client: set(c.messages["lobby"]) >= expected, timeout=30)
        assert client.seqs("lobby") == acked
        assert client.stats["resent"] == 0, client.stats
    rows = [
        row async for row in Message.objects.filter(room__slug="lobby").values("seq", "client_id")
    ]
    assert sorted(row["seq"] for row in rows) == acked
    assert len({row["client_id"] for row in rows}) == sent, "each client_id stored once"


async def test_messages_sent_on_one_process_reach_the_other_in_seq_order(pair):
    servers, _ = pair()
    clients = spread(servers, 4)
    async with running(clients):
        await asyncio.gather(*(stream(client, 10, 0.005) for client in clients))
        await assert_every_member_holds_every_message_once(clients, sent=40)


async def test_kill_9_mid_stream_loses_and_doubles_nothing(pair):
    (one, two), prefix = pair()
    group = f"{prefix}__group__room.lobby"
    bus = redis.Redis.from_url(REDIS_URL)
    clients = spread([one, two], 6)
    left: list[str] = []
    for client in clients:
        client.on_frame = lambda f: left.extend(a["name"] for a in (f.get("left") or []))
    ghost = await WsClient.open(one.ws_url + "?name=ghost")  # never comes back
    await ghost.send({"type": "join", "room": "lobby"})
    await ghost.expect("joined")
    async with running(clients):
        assert bus.pubsub_numsub(group) == [(group.encode(), 2)]
        streams = [asyncio.create_task(stream(client, 20, 0.01)) for client in clients]
        await until(lambda: sum(len(c.acked) for c in clients) >= 40, timeout=30)
        one.kill()
        await asyncio.gather(*streams)
        await assert_every_member_holds_every_message_once(clients, sent=120)
        assert sum(client.stats["connects"] for client in clients) > len(clients), (
            "some reconnected"
        )
        # No stale member: the dead process's subscription went with it.
        assert bus.pubsub_numsub(group) == [(group.encode(), 1)]
        # Its ghost socket expires from presence, and the room is told.
        await until(lambda: "ghost" in left, timeout=15)
    assert two.proc.poll() is None


async def test_redis_restart_mid_stream_loses_and_doubles_nothing(pair, redis_process):
    (one, two), _ = pair(redis_url=redis_process.url)
    clients = spread([one, two], 6)
    async with running(clients):
        streams = [asyncio.create_task(stream(client, 20, 0.01)) for client in clients]
        await until(lambda: sum(len(c.acked) for c in clients) >= 30, timeout=30)
        redis_process.stop()
        # Sends go on while Redis is away: stored and acked, their broadcasts lost.
        await until(lambda: sum(len(c.acked) for c in clients) >= 60, timeout=30)
        redis_process.start()
        await asyncio.gather(*streams)
        await assert_every_member_holds_every_message_once(clients, sent=120)
    assert one.proc.poll() is None and two.proc.poll() is None, "no server died"
    logs = one.log_path.read_text() + two.log_path.read_text()
    assert "broadcast to lobby lost" in logs, "the outage happened during the stream"


async def test_50_concurrent_senders_get_contiguous_seqs(pair):
    servers, _ = pair()

    async def joined(i):
        # max_queue=None: each reads only its ack, and the others' 49 messages
        # must not fill its queue, or it could not read the close reply.
        client = await WsClient.open(f"{servers[i % 2].ws_url}?name=s{i}", max_queue=None)
        await client.send({"type": "join", "room": "lobby"})
        await client.expect("joined")
        return client

    clients = await asyncio.gather(*(joined(i) for i in range(50)))

    async def send(client):
        client_id = str(uuid.uuid4())
        await client.send({"type": "send", "room": "lobby", "body": "now!", "client_id": client_id})
        while (frame := await client.recv())["type"] != "ack":
            pass
        return frame["seq"]

    seqs = await asyncio.gather(*(send(client) for client in clients))
    assert sorted(seqs) == list(range(1, 51))
    stored = [seq async for seq in Message.objects.values_list("seq", flat=True)]
    assert sorted(stored) == list(range(1, 51))
    # Concurrently: each close waits for daphne to drop the TCP connection.
    await asyncio.gather(*(client.close() for client in clients))


async def test_soak_with_churn_has_no_gaps_and_no_duplicates(pair):
    """Members chat while others come and go and connections drop, for
    SOAK_SECONDS (10 by default: about two hundred messages, a dozen visitors,
    a few dropped connections; set it higher for a long soak). Figures go to
    test-artifacts/soak.json."""
    duration = float(os.environ.get("SOAK_SECONDS", "10"))
    servers, _ = pair()
    members = spread(servers, 6, prefix="m")
    rng = random.Random(7)
    churned = drops = 0
    started = time.monotonic()

    visitor_acks: list[int] = []

    async def visitor(i: int) -> None:
        client = spread(servers, 1, prefix=f"v{i}-")[0]
        async with running([client]):
            await client.send("lobby", f"visitor {i} says hi")
            await client.wait_for(lambda: not client.outbox, timeout=30)
        visitor_acks.extend(client.acked.values())

    async with running(members):
        visitors = []
        while time.monotonic() - started < duration:
            for member in members:
                await member.send("lobby", f"{member.urls[0][-3:]} at {time.monotonic():.2f}")
            if rng.random() < 0.5:
                churned += 1
                visitors.append(asyncio.create_task(visitor(churned)))
            if rng.random() < 0.1:  # drop a member's connection: it must recover
                victim = rng.choice(members)
                if victim.ws is not None:
                    drops += 1
                    victim.ws.transport.abort()
            await asyncio.sleep(0.25)  # pacing: about 25 messages a second in all
        await asyncio.gather(*visitors)
        for member in members:  # count the sends once all are acked
            await member.wait_for(lambda m=member: not m.outbox, timeout=60)
        sent = sum(len(c.acked) for c in members) + churned
        await assert_every_member_holds_every_message_once(members, sent, visitor_acks)

    figures = {
        "seconds": round(time.monotonic() - started, 1),
        "messages": sent,
        "members": len(members),
        "visitors": churned,
        "dropped_connections": drops,
        "reconnects": sum(c.stats["connects"] - 1 for c in members),
        "gap_fetches": sum(c.stats["gap_fetches"] for c in members),
        "duplicates_dropped_after_reconnect": sum(c.stats["dropped"] for c in members),
        "duplicates_sent_on_one_connection": sum(c.stats["resent"] for c in members),
        "gaps_left": 0,
    }
    artifacts = Path(ROOT) / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak.json").write_text(json.dumps(figures, indent=2))
    print("soak:", figures)
    assert drops > 0 and churned > 0, "the soak had churn"


async def test_a_resend_to_the_other_process_is_acked_with_its_first_seq(pair):
    servers, _ = pair()
    a = await WsClient.open(f"{servers[0].ws_url}?name=ada")
    b = await WsClient.open(f"{servers[1].ws_url}?name=ada")  # the same guest, elsewhere
    for client in (a, b):
        await client.send({"type": "join", "room": "lobby"})
        await client.expect("joined")
    frame = {"type": "send", "room": "lobby", "body": "once", "client_id": str(uuid.uuid4())}
    acks = []
    for client in (a, b, a):  # as a client does that reconnected elsewhere
        await client.send(frame)
        while (reply := await client.recv())["type"] != "ack":
            pass
        acks.append(reply["seq"])
    assert acks == [1, 1, 1]
    assert [seq async for seq in Message.objects.values_list("seq", flat=True)] == [1]
    await asyncio.gather(a.close(), b.close())


async def test_overloaded_sends_are_resent_by_the_client_and_land(start_server, lobby):
    import psycopg

    from tests.conftest import database_url

    server = start_server(redis_url=REDIS_URL, CHAT_MAX_SEND_LAG="0.01", **FAST)
    refused: list[dict] = []

    def on_frame(frame: dict) -> None:
        if frame["type"] == "error" and frame["code"] == "overloaded":
            refused.append(frame)

    # A socket handles its frames one at a time: the sends that find the
    # writer behind come from a second client.
    first = ChatClient(f"{server.ws_url}?name=first", rooms=["lobby"])
    client = ChatClient(f"{server.ws_url}?name=busy", rooms=["lobby"], on_frame=on_frame)
    async with running([first, client]):
        # The room's row locked: the server's writer waits on it, and falls behind.
        locker = await psycopg.AsyncConnection.connect(database_url())
        await locker.execute("SELECT 1 FROM chat_room WHERE slug = 'lobby' FOR UPDATE")
        try:
            await first.send("lobby", "first")
            probe = await psycopg.AsyncConnection.connect(database_url(), autocommit=True)
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
            async with asyncio.timeout(10):
                while (await (await probe.execute(waiting)).fetchone())[0] == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await probe.close()
            for i in range(4):
                await client.send("lobby", f"then {i}")
            await client.wait_for(lambda: len(refused) >= 4, timeout=10)
        finally:
            await locker.rollback()
            await locker.close()
        await client.wait_for(lambda: not client.outbox, timeout=30)
        await first.wait_for(lambda: not first.outbox, timeout=30)
    assert all(frame["retry_after"] > 0 for frame in refused)
    acked = [*first.acked.values(), *client.acked.values()]
    assert sorted(acked) == [1, 2, 3, 4, 5], "every refused send landed, once"
    bodies = [b async for b in Message.objects.order_by("seq").values_list("body", flat=True)]
    assert sorted(bodies) == sorted(["first", *(f"then {i}" for i in range(4))])


async def test_presence_diffs_converge_to_the_true_member_list_across_processes(pair):
    servers, _ = pair()
    watcher = await WsClient.open(f"{servers[0].ws_url}?name=watcher")
    await watcher.send({"type": "join", "room": "lobby"})
    await watcher.expect("joined")
    seen: dict[str, bool] = {}
    count: list[int] = []

    def take(frame: dict) -> None:
        if frame["online"] is not None:
            seen.clear()
            seen.update({a["name"]: True for a in frame["online"]})
        for author in frame["joined"] or ():
            seen[author["name"]] = True
        for author in frame["left"] or ():
            seen.pop(author["name"], None)
        count.append(frame["count"])

    take(await watcher.expect("presence"))
    # 12 guests join over both processes (two of them twice), then 5 leave.
    clients = {}
    for i in range(12):
        clients[i] = [await WsClient.open(f"{servers[i % 2].ws_url}?name=g{i}")]
        if i < 2:
            clients[i].append(await WsClient.open(f"{servers[(i + 1) % 2].ws_url}?name=g{i}"))
        for client in clients[i]:
            await client.send({"type": "join", "room": "lobby"})
            await client.expect("joined")
    for i in (0, 3, 4, 7, 11):
        for client in clients.pop(i):
            await client.close()
    truth = {"watcher", *(f"g{i}" for i in clients)}
    async with asyncio.timeout(20):
        while set(seen) != truth or count[-1] != len(truth):
            take(await watcher.expect("presence"))
    assert sorted(seen) == sorted(truth) and count[-1] == 8
    await asyncio.gather(watcher.close(), *(c.close() for cs in clients.values() for c in cs))

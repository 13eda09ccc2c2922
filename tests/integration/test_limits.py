"""Limits that hold across processes: send rates per user and per address,
open sockets per user, rooms per socket; and memory under a join/leave flood."""

import asyncio
import json
import re
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async

from chat.models import Message, Room
from tests.conftest import REDIS_URL, TIMEOUT, WsClient
from tests.factories import room_make, token_make

pytestmark = pytest.mark.django_db(transaction=True)


def send(room: str = "lobby", body: str = "hi") -> dict:
    return {"type": "send", "room": room, "body": body, "client_id": str(uuid.uuid4())}


async def answer(client: WsClient) -> dict:
    """The ack or error for the last send (skipping the sender's own copy)."""
    while (frame := await client.recv())["type"] == "message":
        pass
    return frame


@pytest.fixture
async def token(make_user):
    """An API token of alice, who owns the lobby."""

    def setup() -> str:
        user = make_user("alice")
        room_make(slug="lobby", creator=user)
        return token_make(user=user)

    return await database_sync_to_async(setup)()


@pytest.mark.redis
async def test_a_users_send_rate_is_shared_by_every_process_and_http(start_server, token):
    env = {
        "CHAT_SEND_BURST": "3",
        "CHAT_SEND_PER_MINUTE": "1",
        "CHANNEL_LAYER_PREFIX": uuid.uuid4().hex,  # buckets of this test's own
    }
    a, b = start_server(redis_url=REDIS_URL, **env), start_server(redis_url=REDIS_URL, **env)
    headers = {"Authorization": f"Bearer {token}"}
    on_a = await WsClient.open(a.ws_url, additional_headers=headers)
    on_b = await WsClient.open(b.ws_url, additional_headers=headers)
    for client in (on_a, on_b):
        await client.send({"type": "join", "room": "lobby"})
        await client.expect("joined")
    for _ in range(3):
        await on_a.send(send())
        assert (await answer(on_a))["type"] == "ack"
    await on_b.send(send())
    refused = await answer(on_b)
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after"] <= 60
    async with httpx.AsyncClient(base_url=b.http_url, headers=headers) as http:
        body = {"body": "over http", "client_id": str(uuid.uuid4())}
        posted = await http.post("/api/v1/rooms/lobby/messages", json=body)
    assert posted.status_code == 429 and posted.json()["code"] == "rate_limited"


async def test_guests_at_one_address_share_its_send_rate(start_server, token):
    server = start_server(CHAT_IP_SEND_BURST="3", CHAT_IP_SEND_PER_MINUTE="1")
    guests = [await WsClient.open(server.ws_url + f"?name={name}") for name in ("ada", "bo")]
    for guest in guests:
        await guest.send({"type": "join", "room": "lobby"})
        await guest.expect("joined")
    for _ in range(3):
        await guests[0].send(send())
        assert (await answer(guests[0]))["type"] == "ack"
    await guests[1].send(send())  # another name, the same address
    assert (await answer(guests[1]))["code"] == "rate_limited"


@pytest.mark.redis
async def test_a_user_may_open_so_many_sockets_across_processes(start_server, token):
    env = {"CHAT_MAX_SOCKETS_PER_USER": "2", "CHANNEL_LAYER_PREFIX": uuid.uuid4().hex}
    a, b = start_server(redis_url=REDIS_URL, **env), start_server(redis_url=REDIS_URL, **env)
    headers = {"Authorization": f"Bearer {token}"}
    first = await WsClient.open(a.ws_url, additional_headers=headers)
    await WsClient.open(b.ws_url, additional_headers=headers)
    async with websockets.connect(b.ws_url, additional_headers=headers) as third:
        error = json.loads(await third.recv())
        assert (error["type"], error["code"]) == ("error", "forbidden")
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await third.recv()
    assert third.close_code == 4429
    await first.close()
    # The slot frees once the server has handled the close: try until it has.
    async with asyncio.timeout(TIMEOUT):
        while True:
            async with websockets.connect(a.ws_url, additional_headers=headers) as again:
                if json.loads(await again.recv())["type"] == "hello":
                    break


async def test_a_socket_may_join_so_many_rooms(connect, make_user, settings):
    settings.CHAT_MAX_ROOMS_PER_SOCKET = 2
    user = await database_sync_to_async(make_user)("alice")
    for slug in ("one", "two", "three"):
        await database_sync_to_async(room_make)(slug=slug, creator=user)
    client, _ = await connect(user=user)
    await client.join("one")
    await client.join("two")
    await client.send({"type": "join", "room": "three"})
    error = await client.expect("error")
    assert error["code"] == "bad_request" and "at most 2 rooms" in error["detail"]
    await client.join("two")  # a rejoin is not another room


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_a_join_and_leave_flood_does_not_grow_memory(
    start_server, transactional_db, record_property
):
    # 4,200 public rooms no socket of the server has joined, made at once:
    # the joins then measure the server's per-room state, not the database's
    # writes (a join that made each room took minutes).
    await Room.objects.abulk_create(
        Room(slug=f"flood-{i}", title=f"flood-{i}") for i in range(4_200)
    )
    server = start_server()
    client = await WsClient.open(f"{server.ws_url}?name=flooder")
    joined = 0

    async def cycles(count: int, batch: int = 50) -> None:
        """Join and leave `count` rooms never joined before."""
        nonlocal joined
        for start in range(joined, joined + count, batch):  # pipelined: replies come in order
            for i in range(start, start + batch):
                await client.send({"type": "join", "room": f"flood-{i}"})
                await client.send({"type": "leave", "room": f"flood-{i}"})
            for _ in range(batch):
                await client.expect("joined")
                await client.expect("left")
        joined += count

    await cycles(1_200)  # warm up: caches, connections, the 1,000 rooms' metric labels
    before = rss_kib(server.proc.pid)
    await cycles(3_000)
    after = rss_kib(server.proc.pid)
    record_property("rss_kib", {"before": before, "after": after})
    print(f"RSS across 3,000 join/leave cycles: {before} KiB -> {after} KiB")
    # 200 bytes a cycle would be 600 KiB: per-room state left behind (a dict
    # entry, a set, a subscription: more than that) shows up here.
    assert after - before < 600, (before, after)


def metric(server, name: str) -> float:
    with urllib.request.urlopen(server.http_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_client_that_stops_reading_is_closed_and_recovers_with_since(start_server, token):
    server = start_server(CHAT_MAX_OUTBOUND_BYTES=str(256 * 1024))
    # max_queue=1: once one frame waits, websockets stops reading the socket,
    # so the server's backlog grows as for a client that hung.
    slow = await websockets.connect(server.ws_url + "?name=slow", max_queue=1)
    assert json.loads(await slow.recv())["type"] == "hello"
    await slow.send(json.dumps({"type": "join", "room": "lobby"}))
    sender = await WsClient.open(server.ws_url + "?name=sender")
    await sender.send({"type": "join", "room": "lobby"})
    await sender.expect("joined")

    body, sent = "x" * 4000, 0
    while not await asyncio.to_thread(metric, server, "chat_slow_clients_total"):
        for _ in range(200):
            await sender.send(send(body=body))
            sent += 1
            await answer(sender)  # its ack, one at a time
        assert sent < 20_000, "the slow client was never disconnected"

    seqs = []
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while True:  # what was sent before the close, then the close
            frame = json.loads(await slow.recv())
            if frame["type"] == "joined":
                seqs += [m["seq"] for m in frame["messages"]]
            elif frame["type"] == "message":
                seqs.append(frame["seq"])
    assert slow.close_code == 4008
    assert seqs == list(range(seqs[0], seqs[-1] + 1)) and seqs[-1] < sent

    back = await WsClient.open(server.ws_url + "?name=slow")
    await back.send({"type": "join", "room": "lobby", "since": seqs[-1]})
    joined = await back.expect("joined")
    recovered = [m["seq"] for m in joined["messages"]]
    while recovered[-1] < joined["last_seq"]:
        await back.send({"type": "history", "room": "lobby", "after": recovered[-1], "limit": 100})
        recovered += [m["seq"] for m in (await back.expect("history"))["messages"]]
    assert recovered == list(range(seqs[-1] + 1, sent + 1))  # all the rest, once each


async def test_a_write_refused_for_a_while_is_not_overtaken_by_a_later_one(start_server, token):
    # One send at once, then ten a second: "b" is refused; "c", sent once the
    # bucket has refilled, must still wait for "b" to be sent again.
    server = start_server(CHAT_IP_SEND_BURST="1", CHAT_IP_SEND_PER_MINUTE="600")
    guest = await WsClient.open(server.ws_url + "?name=ada")
    await guest.send({"type": "join", "room": "lobby"})
    await guest.expect("joined")
    a, b, c = send(body="a"), send(body="b"), send(body="c")
    await guest.send(a)
    assert (await answer(guest))["type"] == "ack"
    await guest.send(b)
    refused = await answer(guest)
    assert (refused["code"], refused["ref"]) == ("rate_limited", b["client_id"])
    await asyncio.sleep(refused["retry_after"] + 0.1)  # the time the bucket takes to refill
    await guest.send(c)
    held = await answer(guest)
    assert (held["code"], held["ref"]) == ("rate_limited", c["client_id"]), "c waits for b"
    await guest.send(b)
    assert (await answer(guest))["type"] == "ack"
    async with asyncio.timeout(TIMEOUT):
        while True:  # c, sent again each time it is told to wait, goes after b
            await guest.send(c)
            if (reply := await answer(guest))["type"] == "ack":
                break
            await asyncio.sleep(reply["retry_after"])
    stored = [m.body async for m in Message.objects.order_by("seq")]
    assert stored == ["a", "b", "c"]
    await guest.close()

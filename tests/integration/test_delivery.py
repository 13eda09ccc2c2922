"""Delivery guards in the consumer: presence, the sweep, and an unavailable layer."""

import asyncio
import uuid
from uuid import uuid4

import psycopg
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import protocol
from chat.actor import Actor
from chat.models import Room
from chat.realtime import relay as relay_module
from chat.realtime import sockets, sweep
from chat.services import broadcast
from chat.services.stream import message_store
from chat.services.tokens import token_create
from tests.conftest import TIMEOUT, database_url

pytestmark = pytest.mark.django_db(transaction=True)


def who(*names):
    return [{"name": name, "guest": False} for name in names]


@pytest.fixture
def users(make_user):
    return make_user("alice"), make_user("bob")


async def test_presence_lists_the_room_and_reports_comings_and_goings(connect, users):
    alice, bob = users
    a, _ = await connect(user=alice)
    await a.join("lobby")
    assert (await a.expect("presence"))["online"] == who("alice")

    b, _ = await connect(user=bob)
    await b.join("lobby")
    assert (await b.expect("presence"))["online"] == who("alice", "bob")
    # Changes go out together every 0.2 s: alice's own join may come with bob's.
    assert who("bob")[0] in (await a.expect("presence"))["joined"]

    second, _ = await connect(user=bob)  # bob on a second device
    await second.join("lobby")
    await second.send({"type": "leave", "room": "lobby"})
    await second.expect("left")
    assert await a.nothing(), "bob is still online on his first socket"

    await b.communicator.disconnect()
    assert (await a.expect("presence"))["left"] == who("bob")


@pytest.mark.postgres
async def test_an_event_that_arrives_during_a_join_is_sent_after_joined(connect, users):
    alice, bob = users
    a, _ = await connect(user=alice)
    await a.join("lobby")
    b, _ = await connect(user=bob)
    [joiner] = [s for s in sockets.sockets_open() if s.actor.name == "bob"]
    relay = relay_module._relay.get()
    # A message this process never saw: Bob's join reads its page from the
    # database (not the frame cache), after subscribing; this lock holds it there.
    room = await Room.objects.aget(slug="lobby")
    await database_sync_to_async(message_store)(
        room_id=room.pk, actor=Actor(name="alice", user=alice), body="unseen", client_id=uuid4()
    )
    locker = await psycopg.AsyncConnection.connect(database_url())
    await locker.execute("LOCK TABLE chat_message IN ACCESS EXCLUSIVE MODE")
    try:
        await b.send({"type": "join", "room": "lobby"})
        await until(lambda: joiner in relay.rooms.get("lobby", ()))
        typing = protocol.TypingEvent(room="lobby", user=protocol.Author(name="cy", guest=True))
        await broadcast.room_broadcast(room="lobby", frame=typing)
        await until(lambda: len(joiner.joining.get("lobby", ())) == 1)  # held, not dropped
    finally:
        await locker.rollback()
        await locker.close()
    assert (await b.recv())["type"] == "joined"
    assert (await b.expect("typing"))["user"]["name"] == "cy"


async def until(condition, timeout: float = TIMEOUT) -> None:
    """Wait for a condition on the in-process consumers' state."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - state of objects that signal nothing
            await asyncio.sleep(0.01)


async def test_the_sweep_sends_a_stored_message_whose_broadcast_was_lost(alice_and_bob):
    a, b = alice_and_bob
    await a.say("lobby", "one")
    await b.expect("message")
    # Stored and committed, but never broadcast: as if the layer lost it.
    room = await Room.objects.aget(slug="lobby")
    await database_sync_to_async(message_store)(
        room_id=room.pk, actor=Actor(name="alice", user=a.user), body="lost", client_id=uuid.uuid4()
    )
    assert await b.nothing()

    seen = await sweep.sweep({})  # the first sweep only notes last_seq
    assert seen == {"lobby": 2}
    assert await b.nothing()
    await sweep.sweep(seen)
    for client in (a, b):
        message = await client.expect("message")
        assert (message["seq"], message["body"]) == (2, "lost")
    await sweep.sweep(seen)
    assert await a.nothing() and await b.nothing(), "a filled hole is not sent again"


async def test_sockets_are_refused_while_the_layer_is_away(settings, make_user):
    # A signed-in socket subscribes to its user's events at once: with the
    # layer away it is refused, to come back with backoff, not kept deaf.
    from chatsite.asgi import application

    token = (await token_create(user=await database_sync_to_async(make_user)("ada"))).token
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    communicator = WebsocketCommunicator(
        application,
        "/ws/chat/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    )
    await communicator.connect(timeout=10)
    closing = await communicator.receive_output(timeout=10)
    assert closing == {"type": "websocket.close", "code": 1013}


@pytest.mark.redis
async def test_a_join_while_redis_is_away_is_unavailable_and_works_after(
    settings, redis_process, connect, make_user
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_process.url]},
        }
    }
    settings.REDIS_URL = redis_process.url
    client, _ = await connect(user=await database_sync_to_async(make_user)("alice"))
    redis_process.stop()
    await client.send({"type": "join", "room": "lobby"})
    error = await client.expect("error")
    assert (error["code"], error["ref"], error["retry_after"]) == ("unavailable", "join", 1.0)
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["type"] == "pong", "the socket survived"
    redis_process.start()
    assert (await client.join("lobby"))["room"] == "lobby"


async def test_joins_are_served_from_the_frame_cache_and_a_gap_falls_back_to_the_database(
    connect, users
):
    from chat import metrics

    def pages(source: str) -> float:
        return metrics.PAGES.labels(source)._value.get()

    alice, bob = users
    a, _ = await connect(user=alice)
    await a.join("lobby")  # the process subscribes: the room's cache starts here
    for body in ("one", "two", "three"):
        await a.say("lobby", body)
    cached, read = pages("cache"), pages("database")
    b, _ = await connect(user=bob)
    joined = await b.join("lobby", since=0)
    assert [m["body"] for m in joined["messages"]] == ["one", "two", "three"]
    assert (pages("cache"), pages("database")) == (cached + 1, read)
    # Seq 4 is committed without a broadcast (as when the layer loses it):
    # the cache has a hole, and a page across it comes from the database.
    room = await Room.objects.aget(slug="lobby")
    await database_sync_to_async(message_store)(
        room_id=room.pk,
        actor=Actor(name="alice", user=alice),
        body="unseen",
        client_id=uuid.uuid4(),
    )
    await a.say("lobby", "five")
    c, _ = await connect(user=bob)
    joined = await c.join("lobby", since=2)
    assert [m["body"] for m in joined["messages"]] == ["three", "unseen", "five"]
    assert (pages("cache"), pages("database")) == (cached + 1, read + 1)
    newest = await c.join("lobby", since=4)
    assert [m["body"] for m in newest["messages"]] == ["five"]
    assert pages("cache") == cached + 2

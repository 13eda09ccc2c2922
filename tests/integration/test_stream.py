"""The write services against a real database: seq allocation and idempotency."""

import asyncio
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import IntegrityError, connection

from chat import protocol
from chat.actor import Actor
from chat.models import Membership, Message, Room
from chat.services.broadcast import room_group
from chat.services.messages import GroupCommit, message_send
from chat.services.rooms import room_create
from chat.services.stream import StreamAppend, message_store, messages_store
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def room(owner):
    return room_make(slug="lobby", creator=owner)


def store(room, actor, body="hi", client_id=None):
    return message_store(
        room_id=room.pk, actor=actor, body=body, client_id=client_id or uuid.uuid4()
    )


def concurrently(count, fn):
    """Run fn(i) in `count` threads released together, each on its own connection."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait(timeout=30)
        try:
            return fn(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


async def test_room_create_makes_the_creator_owner_and_refuses_a_taken_slug(owner):
    room = await room_create(slug="hall", creator=owner)
    role = (
        await Membership.objects.filter(room=room, user=owner).values_list("role", flat=True).aget()
    )
    assert role == Membership.Role.OWNER and room.title == "hall" and room.last_seq == 0
    with pytest.raises(protocol.ChatError) as refused:
        await room_create(slug="hall", creator=owner)
    assert refused.value.code == protocol.ErrorCode.CONFLICT


def test_seqs_count_up_from_one_per_room(room, owner, make_user):
    other = room_make(slug="other", creator=make_user())
    actor = Actor(name="owner", user=owner)
    seqs = [store(room, actor)[0].seq for _ in range(3)]
    assert seqs == [1, 2, 3]
    assert store(other, actor)[0].seq == 1
    room.refresh_from_db()
    assert room.last_seq == 3


def test_guest_messages_keep_the_name_and_no_user(room):
    message, created = store(room, Actor(name="ada"))
    assert created and message.author is None and message.author_name == "ada"


def test_same_client_id_stores_once_and_returns_the_first_seq(room, owner):
    actor = Actor(name="owner", user=owner)
    client_id = uuid.uuid4()
    first, created_first = store(room, actor, "one", client_id)
    store(room, actor, "between")
    again, created_again = store(room, actor, "one, resent", client_id)
    assert (created_first, created_again) == (True, False)
    assert again.seq == first.seq == 1
    assert Message.objects.filter(client_id=client_id).count() == 1
    room.refresh_from_db()
    assert room.last_seq == 2


def test_client_id_of_another_author_is_refused_and_writes_nothing(room, owner):
    client_id = uuid.uuid4()
    store(room, Actor(name="owner", user=owner), "mine", client_id)
    with pytest.raises(protocol.ChatError) as info:
        store(room, Actor(name="mallory"), "hijack", client_id)
    assert info.value.code == protocol.ErrorCode.BAD_REQUEST
    assert list(Message.objects.values_list("body", flat=True)) == ["mine"]


def test_database_constraints_back_the_guarantees(room):
    client_id = uuid.uuid4()
    Message.objects.create(room=room, seq=1, author_name="a", body="x", client_id=client_id)
    with pytest.raises(IntegrityError):
        Message.objects.create(room=room, seq=1, author_name="a", body="y", client_id=uuid.uuid4())
    with pytest.raises(IntegrityError):
        Message.objects.create(room=room, seq=2, author_name="a", body="z", client_id=client_id)


@pytest.mark.postgres
def test_seq_is_gapless_under_50_concurrent_sends(room):
    results = concurrently(50, lambda i: store(room, Actor(name=f"g{i}"), f"m{i}"))
    assert sorted(message.seq for message, _ in results) == list(range(1, 51))
    assert sorted(Message.objects.filter(room=room).values_list("seq", flat=True)) == list(
        range(1, 51)
    )
    room.refresh_from_db()
    assert room.last_seq == 50


@pytest.mark.postgres
def test_concurrent_duplicates_store_one_message_with_one_seq(room):
    client_id = uuid.uuid4()
    results = concurrently(20, lambda i: store(room, Actor(name="ada"), "once", client_id))
    assert {message.seq for message, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    assert Message.objects.filter(room=room).count() == 1


def test_concurrent_sends_are_gapless_on_the_suites_database(room):
    # On SQLite the IMMEDIATE transaction mode serialises writers: the same
    # property as the PostgreSQL test, on whatever database the suite runs on.
    results = concurrently(10, lambda i: store(room, Actor(name=f"g{i}"), f"m{i}"))
    assert sorted(message.seq for message, _ in results) == list(range(1, 11))


async def test_message_send_broadcasts_once_after_commit(room, owner):
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(room_group("lobby"), listener)
    actor = Actor(name="owner", user=owner)
    client_id = uuid.uuid4()

    ack = await message_send(actor=actor, slug="lobby", body="hello", client_id=client_id)
    event = await layer.receive(listener)
    assert (ack.seq, event["seq"], event["room"]) == (1, 1, "lobby")
    assert '"body":"hello"' in event["text"]
    # Committed before it was announced: another connection sees the row.
    stored = await Message.objects.filter(room__slug="lobby", seq=1).aexists()
    assert stored

    again = await message_send(actor=actor, slug="lobby", body="hello", client_id=client_id)
    assert again.seq == 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await layer.receive(listener)


async def test_message_send_to_a_private_room_needs_membership(owner):

    await room_create(slug="secret", creator=owner, private=True)
    with pytest.raises(protocol.ChatError) as info:
        await message_send(
            actor=Actor(name="eve"), slug="secret", body="hi", client_id=uuid.uuid4()
        )
    assert info.value.code == protocol.ErrorCode.NOT_FOUND  # a private room is not there for others
    assert not await Room.objects.filter(slug="secret", last_seq__gt=0).aexists()


def test_a_batch_is_stored_together_with_refusals_per_entry(room, owner, make_user):
    other = room_make(slug="other", creator=make_user())
    secret = room_make(slug="secret", creator=owner, private=True)
    guest, reused = Actor(name="g"), uuid.uuid4()
    results = messages_store(
        appends=[
            StreamAppend(room_id=room.pk, actor=guest, body="a", client_id=reused),
            StreamAppend(room_id=other.pk, actor=guest, body="b", client_id=uuid.uuid4()),
            # A resend of the first, in the same batch: the first's entry, not a new one.
            StreamAppend(room_id=room.pk, actor=guest, body="a", client_id=reused),
            StreamAppend(room_id=secret.pk, actor=guest, body="no", client_id=uuid.uuid4()),
            StreamAppend(room_id=room.pk, actor=Actor(name="h"), body="c", client_id=uuid.uuid4()),
        ]
    )
    assert results[3].code == protocol.ErrorCode.NOT_FOUND
    stored = [(m.room_id, m.seq, created) for m, created in results[:3] + results[4:]]
    assert stored == [
        (room.pk, 1, True),
        (other.pk, 1, True),
        (room.pk, 1, False),
        (room.pk, 2, True),
    ]
    assert list(Room.objects.order_by("pk").values_list("last_seq", flat=True)) == [2, 1, 0]
    assert Message.objects.count() == 3


@pytest.mark.postgres
async def test_sends_waiting_for_the_writer_commit_together(room):
    # Twenty stores queued before the writer runs: one transaction (one xmin)
    # holds them all, with seqs in the order they were queued.
    writer = GroupCommit()
    appends = [
        StreamAppend(
            room_id=room.pk, actor=Actor(name=f"g{i}"), body=str(i), client_id=uuid.uuid4()
        )
        for i in range(20)
    ]
    results = await asyncio.gather(*(writer.store(append) for append in appends))
    assert [(m.seq, m.body, created) for m, created in results] == [
        (i + 1, str(i), True) for i in range(20)
    ]

    def transactions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT xmin::text) FROM chat_message")
            return cursor.fetchone()[0]

    assert await database_sync_to_async(transactions)() == 1


async def test_presence_changes_in_a_room_go_out_together_and_a_come_and_go_cancels():
    from chat.realtime.presence import _announce

    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(room_group("lobby"), listener)
    x, y = protocol.Author(name="x", guest=True), protocol.Author(name="y", guest=False)
    _announce("lobby", x, online=True)
    _announce("lobby", y, online=True)
    _announce("lobby", x, online=False)  # x came and went within the window: no news

    event = await asyncio.wait_for(layer.receive(listener), 5)
    frame = json.loads(event["text"])
    assert frame["joined"] == [{"name": "y", "guest": False}]
    assert "left" not in frame or frame["left"] is None
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await layer.receive(listener)

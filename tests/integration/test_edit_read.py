"""Edits, deletes and read markers over the socket."""

import uuid

import pytest

from chat.models import Membership, Message
from chat.selectors.rooms import rooms_visible

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def users(make_user):
    return make_user("alice"), make_user("bob")


def change(kind, seq, **fields):
    return {"type": kind, "room": "lobby", "seq": seq, "client_id": str(uuid.uuid4()), **fields}


async def test_an_edit_is_a_stream_entry_that_members_see_and_since_recovers(
    alice_and_bob, connect
):
    a, b = alice_and_bob
    await a.say("lobby", "helo")
    await b.expect("message")

    edit = change("edit", 1, body="hello")
    await a.send(edit)
    frames = [await a.recv(), await a.recv()]
    assert {"type": "ack", "client_id": edit["client_id"], "room": "lobby", "seq": 2} in frames
    seen = await b.expect("message")
    assert (seen["kind"], seen["seq"], seen["target"], seen["body"]) == ("edit", 2, 1, "hello")

    late, _ = await connect(user=b.user)
    joined = await late.join("lobby", since=1)
    assert [(m["kind"], m["target"]) for m in joined["messages"]] == [("edit", 1)]
    original = await Message.objects.aget(seq=1)
    assert original.body == "hello" and original.edited is not None


async def test_a_delete_empties_the_message_everywhere(alice_and_bob):
    a, b = alice_and_bob
    await a.say("lobby", "oops")
    await b.expect("message")
    await a.send(change("delete", 1))
    seen = await b.expect("message")
    assert (seen["kind"], seen["target"], seen["body"]) == ("delete", 1, "")
    await b.send({"type": "history", "room": "lobby"})
    page = await b.expect("history")
    first = page["messages"][0]
    assert (first["seq"], first["deleted"], first["body"]) == (1, True, "")


@pytest.mark.parametrize(
    ("who", "frame", "code"),
    [
        ("bob", change("edit", 1, body="mine now"), "forbidden"),
        ("bob", change("delete", 1), "forbidden"),
        ("alice", change("edit", 99, body="x"), "not_found"),
        ("guest", change("edit", 1, body="x"), "forbidden"),
    ],
)
async def test_only_the_signed_in_author_changes_a_message(
    connect, users, guests_allowed, who, frame, code
):
    alice, bob = users
    a, _ = await connect(user=alice)
    await a.join("lobby")
    await a.say("lobby", "original")
    other, _ = await connect(user={"alice": alice, "bob": bob}.get(who))
    await other.join("lobby")
    await other.send(frame)
    error = await other.expect("error")
    assert (error["code"], error["ref"]) == (code, frame["client_id"])
    message = await Message.objects.aget(seq=1)
    assert (message.body, message.deleted) == ("original", False)
    assert await Message.objects.acount() == 1


async def test_a_deleted_message_cannot_be_edited(connect, users):
    alice, _ = users
    a, _ = await connect(user=alice)
    await a.join("lobby")
    await a.say("lobby", "gone soon")
    await a.send(change("delete", 1))
    await a.recv(), await a.recv()
    await a.send(change("edit", 1, body="back?"))
    assert (await a.expect("error"))["code"] == "bad_request"


async def test_read_moves_the_marker_forward_only_and_not_past_the_end(alice_and_bob):
    a, b = alice_and_bob
    for i in range(3):
        await a.say("lobby", f"m{i}")
        await b.expect("message")
    rows = {row.slug: row for row in await rooms_visible(user=b.user)}
    assert rows["lobby"].unread == 3 and rows["lobby"].last_read_seq == 0
    assert {row.slug: row for row in await rooms_visible(user=a.user)}["lobby"].unread == 0

    await b.send({"type": "read", "room": "lobby", "seq": 2})
    await b.send({"type": "read", "room": "lobby", "seq": 1})
    await b.send({"type": "read", "room": "lobby", "seq": 99})
    await b.send({"type": "ping"})
    await b.expect("pong")
    marker = await Membership.objects.aget(room__slug="lobby", user=b.user)
    assert marker.last_read_seq == 3
    assert {row.slug: row for row in await rooms_visible(user=b.user)}["lobby"].unread == 0

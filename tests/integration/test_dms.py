"""Direct messages: made on the first message, found again by the same people,
private to them, and announced to their sockets."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat import protocol
from chat.models import Membership, Mention, Message, Room
from chat.selectors.rooms import rooms_visible
from chat.services.dms import _dm_room_create
from chat.services.rooms import room_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def people(make_user):
    names = ["alice", "bob", "carol", "dave", *(f"u{i}" for i in range(7))]
    return await database_sync_to_async(lambda: {name: make_user(name) for name in names})()


def dm(*users, body="hi"):
    return {"type": "dm", "users": list(users), "body": body, "client_id": str(uuid.uuid4())}


async def acked(client, frame):
    """Send a frame and return its ack (or error), passing over `added` and messages."""
    await client.send(frame)
    while (got := await client.recv())["type"] in ("added", "message"):
        pass
    assert got["type"] in ("ack", "error"), got
    return got


async def test_the_first_message_makes_the_dm_and_tells_both(people, connect):
    a, _ = await connect(user=people["alice"])
    b, _ = await connect(user=people["bob"])
    await a.send(dm("bob", body="lunch?"))
    got = {frame["type"]: frame for frame in [await a.recv(), await a.recv()]}
    ack = got["ack"]
    added = {
        "type": "added",
        "room": ack["room"],
        "title": "alice, bob",
        "kind": "dm",
        "members": ["alice", "bob"],
    }
    assert got["added"] == added
    assert await b.expect("added") == added
    assert ack["room"].startswith("dm-") and ack["seq"] == 1
    joined = await b.join(ack["room"])
    assert (joined["kind"], joined["private"], joined["members"]) == ("dm", True, ["alice", "bob"])
    assert [m["body"] for m in joined["messages"]] == ["lunch?"]

    # The same two people, either way round, find the same DM; nobody is told again.
    await a.join(ack["room"])
    again = await acked(b, dm("alice", body="sure"))
    assert (again["room"], again["seq"]) == (ack["room"], 2)
    assert (await a.expect("message"))["body"] == "sure"
    assert await b.nothing()
    assert await Room.objects.filter(kind="dm").acount() == 1


async def test_a_group_dm_is_its_own_room_of_up_to_eight(people, connect):
    a, _ = await connect(user=people["alice"])
    pair = await acked(a, dm("bob"))
    group = await acked(a, dm("bob", "carol"))
    assert group["room"] != pair["room"]
    room = await Room.objects.aget(slug=group["room"])
    assert room.title == "alice, bob, carol"
    members = Membership.objects.filter(room=room).values_list("user__username", "role")
    assert sorted([m async for m in members]) == [
        ("alice", "member"), ("bob", "member"), ("carol", "member")
    ]  # fmt: skip
    eight = await acked(a, dm(*(f"u{i}" for i in range(7))))
    assert await Membership.objects.filter(room__slug=eight["room"]).acount() == 8
    nine = dm("bob", *(f"u{i}" for i in range(7)))
    error = await acked(a, nine)
    assert (error["code"], error["ref"]) == ("too_large", nine["client_id"])


@pytest.mark.parametrize(
    ("who", "frame", "code"),
    [
        ("alice", dm("nobody"), "not_found"),
        ("alice", dm("alice"), "bad_request"),
        ("alice", dm(), "bad_request"),
        ("alice", dm("bob", body=" "), "bad_request"),
        (None, dm("bob"), "forbidden"),
    ],
    ids=["unknown-user", "only-oneself", "nobody", "blank", "guest"],
)
async def test_a_dm_that_cannot_be_sent_makes_nothing(
    people, connect, guests_allowed, who, frame, code
):
    client, _ = await connect(user=people.get(who), path="/ws/chat/?name=gus")
    error = await acked(client, frame)
    assert error["code"] == code
    assert not await Room.objects.filter(kind="dm").aexists()


async def test_a_dm_is_private_to_its_members_and_listed_as_a_dm(people, connect, api):
    a, _ = await connect(user=people["alice"])
    slug = (await acked(a, dm("bob")))["room"]
    d, _ = await connect(user=people["dave"])
    await d.send({"type": "join", "room": slug})
    assert (await d.expect("error"))["code"] == "not_found"
    listed = [(r.kind, r.members) for r in await rooms_visible(user=people["bob"])]
    assert listed == [("dm", ["alice", "bob"]), ("room", [])]  # and the site's lobby
    assert [r.kind for r in await rooms_visible(user=people["dave"])] == ["room"]

    bob = await api(people["bob"])
    left = await bob("DELETE", f"/rooms/{slug}/members/bob")
    assert (left.status_code, left.json()["detail"]) == (
        400,
        "the members of a direct message are fixed",
    )
    invite = await bob("PUT", f"/rooms/{slug}/members/dave")
    assert invite.status_code == 403
    posted = await bob(
        "POST", "/dms", {"users": ["alice"], "body": "over http", "client_id": str(uuid.uuid4())}
    )
    assert (posted.status_code, posted.json()["room"]) == (201, slug)
    assert await Membership.objects.filter(room__slug=slug).acount() == 2


async def test_an_invitation_reaches_the_invitees_sockets(people, connect, api):
    await room_create(slug="den", creator=people["alice"], private=True)
    b, _ = await connect(user=people["bob"])
    alice = await api(people["alice"])
    assert (await alice("PUT", "/rooms/den/members/bob")).status_code == 204
    assert await b.expect("added") == {
        "type": "added",
        "room": "den",
        "title": "den",
        "kind": "room",
        "members": [],
    }
    assert (await b.join("den"))["kind"] == "room"


def make_dm(*users):
    """The DM of these users, as its first message would make it."""
    return _dm_room_create(members={u.pk: u.get_username() for u in users})


def in_dm(kind, room, **fields):
    return {"type": kind, "room": room, "client_id": str(uuid.uuid4()), **fields}


async def test_a_blocked_user_cannot_write_to_the_blockers_dms(people, connect, api):
    pair, group = [
        (await make_dm(*(people[name] for name in names)))[0].slug
        for names in (("alice", "bob"), ("alice", "bob", "carol"))
    ]
    a, _ = await connect(user=people["alice"])
    b, _ = await connect(user=people["bob"])
    await a.join(pair)
    await a.join(group)
    await a.say(pair, "hello")
    await b.join(pair)
    for _ in range(2):  # idempotent
        await b.send({"type": "block", "user": "alice", "on": True})
        assert await b.expect("blocks") == {"type": "blocks", "users": ["alice"]}

    refused = [
        await acked(a, in_dm("send", pair, body="hello?")),
        await acked(a, in_dm("send", group, body="anyone?")),
        await acked(a, in_dm("edit", pair, seq=1, body="edited")),
        await acked(a, in_dm("react", pair, seq=1, emoji="👍", on=True)),
        await acked(a, dm("bob", body="again")),
        await acked(a, dm("bob", "dave", body="a new group")),
    ]
    assert [(e["type"], e["code"]) for e in refused] == [("error", "forbidden")] * 6
    assert refused[0]["detail"] == "someone in this DM has blocked you"
    assert refused[4]["detail"] == "bob has blocked you"
    assert await Room.objects.filter(kind="dm").acount() == 2  # no new group
    assert await Message.objects.filter(room__slug=pair).acount() == 1
    # The blocker still writes; the blocked user may take back what they wrote.
    assert (await acked(b, in_dm("send", pair, body="go away")))["type"] == "ack"
    assert (await acked(a, in_dm("delete", pair, seq=1)))["type"] == "ack"

    bob = await api(people["bob"])
    assert (await bob("GET", "/blocks")).json() == {"type": "blocks", "users": ["alice"]}
    assert (await bob("DELETE", "/blocks/alice")).json()["users"] == []
    assert (await acked(a, in_dm("send", pair, body="friends again")))["type"] == "ack"
    assert (await bob("PUT", "/blocks/carol")).json()["users"] == ["carol"]
    assert (await bob("PUT", "/blocks/bob")).json()["detail"] == "you cannot block yourself"
    assert (await bob("PUT", "/blocks/nobody")).status_code == 404


async def test_guests_cannot_block_and_blocks_are_capped(
    people, connect, guests_allowed, monkeypatch
):
    guest, _ = await connect(path="/ws/chat/?name=gus")
    await guest.send({"type": "block", "user": "alice", "on": True})
    assert (await guest.expect("error"))["code"] == "forbidden"
    monkeypatch.setattr(protocol, "MAX_BLOCKS", 2)
    a, _ = await connect(user=people["alice"])
    for name in ("bob", "carol"):
        await a.send({"type": "block", "user": name, "on": True})
        await a.expect("blocks")
    await a.send({"type": "block", "user": "dave", "on": True})
    assert (await a.expect("error"))["detail"] == "you may block at most 2 people"
    await a.send({"type": "block", "user": "bob", "on": True})  # already blocked: fine
    assert (await a.expect("blocks"))["users"] == ["bob", "carol"]


async def test_mentions_from_a_blocked_user_are_not_recorded(people, connect, api):
    assert (await (await api(people["carol"]))("PUT", "/blocks/alice")).status_code == 200
    a, _ = await connect(user=people["alice"])
    await a.join("lobby")
    await a.say("lobby", "@carol @bob standup?")
    await a.send({"type": "history", "room": "lobby"})
    assert (await a.expect("history"))["messages"][0]["mentions"] == ["bob"]
    assert [m.user_id async for m in Mention.objects.all()] == [people["bob"].pk]

"""Direct messages: made on the first message, found again by the same people,
private to them, and announced to their sockets."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.models import Membership, Room
from chat.selectors import rooms_visible
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
    added = {"type": "added", "room": ack["room"], "title": "alice, bob", "kind": "dm"}
    assert got["added"] == added
    assert await b.expect("added") == added
    assert ack["room"].startswith("dm-") and ack["seq"] == 1
    joined = await b.join(ack["room"])
    assert (joined["kind"], joined["private"]) == ("dm", True)
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
    assert (await d.expect("error"))["code"] == "forbidden"
    assert [r.kind for r in await rooms_visible(user=people["bob"])] == ["dm"]
    assert await rooms_visible(user=people["dave"]) == []

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
    await database_sync_to_async(room_create)(slug="den", creator=people["alice"], private=True)
    b, _ = await connect(user=people["bob"])
    alice = await api(people["alice"])
    assert (await alice("PUT", "/rooms/den/members/bob")).status_code == 204
    assert await b.expect("added") == {
        "type": "added",
        "room": "den",
        "title": "den",
        "kind": "room",
    }
    assert (await b.join("den"))["kind"] == "room"

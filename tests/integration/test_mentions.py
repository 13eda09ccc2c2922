"""@mentions: who a message names, the inbox, and the per-room count."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.models import Mention, Room
from chat.selectors.rooms import rooms_visible
from chat.services.rooms import room_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def people(make_user):
    names = ["alice", "bob", "carol", "dave"]
    return await database_sync_to_async(lambda: {name: make_user(name) for name in names})()


async def sent(client, room, body):
    """Say something; the sender's own copy of the message (after its ack)."""
    client_id = str(uuid.uuid4())
    await client.send({"type": "send", "room": room, "body": body, "client_id": client_id})
    got = {}
    while len(got) < 2:
        frame = await client.recv()
        if frame.get("client_id") == client_id:
            got[frame["type"]] = frame
    return got["message"]


async def test_a_message_names_who_may_read_it_and_they_see_it_marked(people, connect):
    a, _ = await connect(user=people["alice"])
    b, _ = await connect(user=people["bob"])
    await a.join("lobby")
    await b.join("lobby")
    mine = await sent(a, "lobby", "@bob, @carol. and @nobody, not @alice, mail a@b.c")
    assert mine["mentions"] == ["bob", "carol"]
    assert (await b.expect("message"))["mentions"] == ["bob", "carol"]
    await b.send({"type": "history", "room": "lobby"})
    assert (await b.expect("history"))["messages"][0]["mentions"] == ["bob", "carol"]

    # In a private room, only members are named.
    await room_create(slug="den", creator=people["alice"], private=True)
    await a.join("den")
    assert (await sent(a, "den", "@bob @carol hello"))["mentions"] == []


async def test_the_inbox_pages_newest_first_across_rooms_and_forgets_deleted(people, connect, api):
    await room_create(slug="hall", creator=people["alice"])
    a, _ = await connect(user=people["alice"])
    await a.join("lobby")
    await a.join("hall")
    first = await sent(a, "lobby", "@bob one")
    await sent(a, "hall", "no mention")
    second = await sent(a, "hall", "@bob two")
    third = await sent(a, "lobby", "@bob three")

    b, _ = await connect(user=people["bob"])
    await b.send({"type": "mentions", "limit": 2})
    page = await b.expect("mentions")
    assert [(m["room"], m["body"]) for m in page["messages"]] == [
        ("lobby", "@bob three"), ("hall", "@bob two")
    ]  # fmt: skip
    assert page["complete"] is False
    await b.send({"type": "mentions", "before": second["id"], "limit": 2})
    page = await b.expect("mentions")
    assert [m["seq"] for m in page["messages"]] == [first["seq"]] and page["complete"] is True

    await a.send({"type": "delete", "room": "lobby", "seq": third["seq"],
                  "client_id": str(uuid.uuid4())})  # fmt: skip
    while (await a.recv())["type"] != "ack":
        pass
    http = await api(people["bob"])
    inbox = (await http("GET", "/mentions")).json()
    assert [m["body"] for m in inbox["messages"]] == ["@bob two", "@bob one"]
    assert (await http("GET", "/mentions?limit=0")).status_code == 400


async def test_the_inbox_leaves_out_rooms_the_user_may_no_longer_read(people, connect):
    await room_create(slug="den", creator=people["alice"], private=True)
    a, _ = await connect(user=people["alice"])
    await a.join("den")
    await database_sync_to_async(
        lambda: Room.objects.get(slug="den").memberships.create(user=people["bob"])
    )()
    await sent(a, "den", "@bob secret plans")
    assert await Mention.objects.acount() == 1
    await database_sync_to_async(
        lambda: Room.objects.get(slug="den").memberships.filter(user=people["bob"]).delete()
    )()
    b, _ = await connect(user=people["bob"])
    await b.send({"type": "mentions"})
    assert (await b.expect("mentions"))["messages"] == []


async def test_rooms_count_unread_mentions_until_read(people, connect):
    a, _ = await connect(user=people["alice"])
    b, _ = await connect(user=people["bob"])
    await b.join("lobby")
    await a.join("lobby")
    await sent(a, "lobby", "@bob look")
    await sent(a, "lobby", "plain")
    last = await sent(a, "lobby", "@bob again")
    [lobby] = await rooms_visible(user=people["bob"])
    assert (lobby.unread, lobby.mentions) == (3, 2)
    await b.send({"type": "read", "room": "lobby", "seq": last["seq"]})
    await b.send({"type": "ping"})
    while (await b.recv())["type"] != "pong":
        pass
    [lobby] = await rooms_visible(user=people["bob"])
    assert (lobby.unread, lobby.mentions) == (0, 0)


async def test_an_edit_adds_and_drops_mentions_and_a_delete_clears_them(people, connect, api):
    a, _ = await connect(user=people["alice"])
    b, _ = await connect(user=people["bob"])
    await b.join("lobby")
    await a.join("lobby")
    mine = await sent(a, "lobby", "lunch, @carol?")
    await b.expect("message")

    async def change(kind: str, body: str = "") -> dict:
        frame = {"type": kind, "room": "lobby", "seq": mine["seq"], "client_id": str(uuid.uuid4())}
        await a.send(frame | ({"body": body} if kind == "edit" else {}))
        return await b.expect("message")

    async def inbox(user: str) -> list[str]:
        page = (await (await api(people[user]))("GET", "/mentions")).json()
        return [m["body"] for m in page["messages"]]

    assert (await change("edit", "lunch, @bob and @dave?"))["mentions"] == ["bob", "dave"]
    assert await inbox("bob") == ["lunch, @bob and @dave?"] and await inbox("carol") == []
    await b.send({"type": "history", "room": "lobby"})
    [message, edit] = (await b.expect("history"))["messages"]
    assert message["mentions"] == edit["mentions"] == ["bob", "dave"]
    assert (await change("edit", "lunch, @dave?"))["mentions"] == ["dave"]
    assert await inbox("bob") == []
    assert (await change("delete"))["mentions"] == []
    assert not await Mention.objects.aexists()

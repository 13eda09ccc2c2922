"""Search: PostgreSQL's full-text search, the icontains fallback, and the
rooms a user may read."""

import uuid

import pytest

from chat.actor import Actor
from chat.models import Room, Sanction
from chat.selectors.messages import messages_search
from chat.services.stream import message_store
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rooms(make_user):
    """alice writes in a public lobby, her private den, and a hall bob is banned from."""
    alice, bob = make_user("alice"), make_user("bob")
    lobby = room_make(slug="lobby", creator=alice)
    den = room_make(slug="den", creator=alice, private=True)
    hall = room_make(slug="hall", creator=alice)
    member_make(room=lobby, user=bob)
    Sanction.objects.create(room=hall, user=bob, kind=Sanction.Kind.BAN)
    said = Actor(name="alice", user=alice)
    for room, body in [
        (lobby, "The deploy is green"),
        (lobby, "lunch?"),
        (den, "secret deploy plans"),
        (hall, "deploy in the hall"),
        (lobby, "Deploying again tomorrow"),
        (lobby, "deploy this by mistake"),
    ]:
        message_store(room_id=room.pk, actor=said, body=body, client_id=uuid.uuid4())
    message_store(room_id=lobby.pk, actor=said, body="", client_id=uuid.uuid4(),
                  kind="delete", target=4)  # fmt: skip
    return Actor(name="alice", user=alice), Actor(name="bob", user=bob)


def bodies(found):
    return [(m.room, m.body) for m in found.messages]


@pytest.mark.postgres
async def test_full_text_search_stems_words_and_keeps_to_readable_rooms(rooms):
    alice, bob = rooms
    found = await messages_search(actor=bob, q="deploys", full_text=True)
    assert bodies(found) == [
        ("lobby", "Deploying again tomorrow"),
        ("lobby", "The deploy is green"),
    ]
    found = await messages_search(actor=alice, q='deploy -"green"', full_text=True)
    assert bodies(found) == [
        ("lobby", "Deploying again tomorrow"), ("hall", "deploy in the hall"),
        ("den", "secret deploy plans"),
    ]  # fmt: skip


@pytest.mark.parametrize("full_text", [False, pytest.param(True, marks=pytest.mark.postgres)])
async def test_search_pages_newest_first_and_filters_by_room(rooms, full_text):
    alice, _ = rooms
    first = await messages_search(actor=alice, q="DEPLOY", limit=2, full_text=full_text)
    assert [m.body for m in first.messages] == ["Deploying again tomorrow", "deploy in the hall"]
    assert first.complete is False
    rest = await messages_search(
        actor=alice, q="deploy", before=first.messages[-1].id, full_text=full_text
    )
    assert bodies(rest) == [("den", "secret deploy plans"), ("lobby", "The deploy is green")]
    assert rest.complete is True
    found = await messages_search(actor=alice, q="deploy", room="den", full_text=full_text)
    assert bodies(found) == [("den", "secret deploy plans")]
    guest = await messages_search(actor=Actor(name="gus"), q="plans", full_text=full_text)
    assert guest.messages == []


async def test_search_over_the_socket_and_http(rooms, connect, api):
    _, bob = rooms
    client, _ = await connect(user=bob.user)
    await client.send({"type": "search", "q": "lunch"})
    found = await client.expect("search")
    assert [(m["room"], m["seq"], m["body"]) for m in found["messages"]] == [("lobby", 2, "lunch?")]
    await client.send({"type": "search", "q": "plans", "room": "den"})
    assert (await client.expect("error"))["code"] == "not_found"
    await client.send({"type": "search", "q": "  "})
    assert (await client.expect("error"))["detail"].startswith("q:")
    await client.send({"type": "search", "q": "x" * 201})
    assert (await client.expect("error"))["code"] == "too_large"

    http = await api(bob.user)
    reply = await http("GET", "/search", params={"q": "green", "room": "lobby"})
    assert [m["body"] for m in reply.json()["messages"]] == ["The deploy is green"]
    assert (await http("GET", "/search", params={"q": "x", "room": "hall"})).status_code == 403
    assert await Room.objects.acount() == 3

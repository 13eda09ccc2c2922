"""Who may do what in a private room: every actor against every action, on
the socket and over HTTP. Each cell is what the server answers: "ok", or the
error code of its refusal."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.models import Membership, Message
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)

ACTORS = ["anonymous", "guest", "non-member", "member", "moderator", "owner"]
# Everything on the socket needs joining first; a refused join leaves the
# socket outside the room, so its later frames are refused as not joined.
SOCKET = {
    # A private room is not there for those outside it: not_found, as for no room.
    "join": dict.fromkeys(ACTORS, "not_found") | {"anonymous": "unauthorized"},
    "send": dict.fromkeys(ACTORS, "bad_request") | {"anonymous": "unauthorized"},
    "history": dict.fromkeys(ACTORS, "bad_request") | {"anonymous": "unauthorized"},
    "typing": dict.fromkeys(ACTORS, "bad_request") | {"anonymous": "unauthorized"},
    "read": dict.fromkeys(ACTORS, "bad_request") | {"anonymous": "unauthorized"},
}
for action in SOCKET:
    SOCKET[action] |= dict.fromkeys(["member", "moderator", "owner"], "ok")

HTTP = {
    ("GET", "/rooms/den"): "read",
    ("GET", "/rooms/den/messages"): "read",
    ("POST", "/rooms/den/messages"): "read",
    ("PUT", "/rooms/den/read"): "read",
    ("GET", "/rooms/den/members"): "read",
    ("PATCH", "/rooms/den"): "manage",
    ("PUT", "/rooms/den/members/newcomer"): "manage",
    ("DELETE", "/rooms/den/members/bystander"): "manage",  # another member
}
HTTP_EXPECTED = {
    "read": {"anonymous": "unauthorized", "non-member": "not_found", "member": "ok",
             "moderator": "ok", "owner": "ok"},
    "manage": {"anonymous": "unauthorized", "non-member": "not_found", "member": "forbidden",
               "moderator": "ok", "owner": "ok"},
}  # fmt: skip


@pytest.fixture
async def people(make_user, settings):
    settings.CHAT_ALLOW_GUESTS = True

    def setup() -> dict:
        users = {name: make_user(name) for name in ("owner", "moderator", "member", "non-member")}
        make_user("newcomer")
        den = room_make(slug="den", creator=users["owner"], private=True)
        member_make(room=den, user=users["moderator"], role=Membership.Role.MODERATOR)
        member_make(room=den, user=users["member"])
        member_make(room=den, user=make_user("bystander"))
        return users

    return await database_sync_to_async(setup)()


async def socket_answer(connect, settings, user, actor: str, action: str) -> str:
    if actor == "anonymous":
        settings.CHAT_ALLOW_GUESTS = False
    client, _ = await connect(user=user, expect_hello=False)
    first = await client.recv()
    if first["type"] == "error":
        return first["code"]
    await client.send({"type": "join", "room": "den"})
    joined = await client.recv()
    if action == "join":
        return "ok" if joined["type"] == "joined" else joined["code"]
    frame = {
        "send": {"type": "send", "room": "den", "body": "hi", "client_id": str(uuid.uuid4())},
        "history": {"type": "history", "room": "den"},
        "typing": {"type": "typing", "room": "den"},
        "read": {"type": "read", "room": "den", "seq": 0},
    }[action]
    await client.send(frame)
    await client.send({"type": "ping"})  # typing and read answer nothing when allowed
    answer = await client.recv()
    while answer["type"] == "message":  # the sender's own copy of its message
        answer = await client.recv()
    return "ok" if answer["type"] in {"ack", "history", "pong"} else answer["code"]


@pytest.mark.parametrize("action", list(SOCKET))
@pytest.mark.parametrize("actor", ACTORS)
async def test_the_socket(connect, people, settings, actor, action):
    user = people.get(actor)
    assert await socket_answer(connect, settings, user, actor, action) == SOCKET[action][actor]
    if SOCKET[action][actor] != "ok":
        assert not await Message.objects.aexists()


@pytest.mark.parametrize(("method", "path"), list(HTTP))
@pytest.mark.parametrize("actor", [a for a in ACTORS if a != "guest"])  # no guests over HTTP
async def test_http(api, people, actor, method, path):
    client = await api(people.get(actor))
    body = {
        ("POST", "/rooms/den/messages"): {"body": "hi", "client_id": str(uuid.uuid4())},
        ("PUT", "/rooms/den/read"): {"seq": 0},
        ("PATCH", "/rooms/den"): {"title": "mine"},
    }.get((method, path))
    response = await client(method, path, body)
    answer = "ok" if response.status_code < 300 else response.json()["code"]
    assert answer == HTTP_EXPECTED[HTTP[(method, path)]][actor]

"""The HTTP API, over real ASGI requests (httpx into the ASGI application),
with the WebSocket side on the same application where they meet."""

import uuid

import httpx
import pytest
from channels.db import database_sync_to_async

from chat.models import ApiToken, Membership, Message, Room
from chat.realtime import sweep
from tests.conftest import Api
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def users(make_user):
    """alice (owner of public 'lobby' and private 'den'), bob (member of neither), mod
    (moderator of den)."""

    def setup():
        alice, bob, mod = make_user("alice"), make_user("bob"), make_user("mod")
        room_make(slug="lobby", creator=alice)
        den = room_make(slug="den", creator=alice, title="Den", private=True)
        member_make(room=den, user=mod, role=Membership.Role.MODERATOR)
        return alice, bob, mod

    return await database_sync_to_async(setup)()


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body["detail"]


ENDPOINTS = [
    ("GET", "/rooms", None),
    ("POST", "/rooms", {"slug": "new"}),
    ("GET", "/rooms/lobby", None),
    ("PATCH", "/rooms/lobby", {"title": "x"}),
    ("GET", "/rooms/lobby/members", None),
    ("PUT", "/rooms/lobby/members/bob", None),
    ("DELETE", "/rooms/lobby/members/bob", None),
    ("GET", "/rooms/lobby/messages", None),
    ("POST", "/rooms/lobby/messages", {"body": "x", "client_id": str(uuid.uuid4())}),
    ("PUT", "/rooms/lobby/read", {"seq": 1}),
    ("GET", "/tokens", None),
    ("POST", "/tokens", {"name": "x"}),
    ("DELETE", "/tokens/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_every_endpoint_is_401_without_a_token_or_with_a_bad_one(
    api, users, method, path, body
):
    for client in (await api(), Api("chat_not-a-real-token")):
        error(await client(method, path, body), 401, "unauthorized")
    assert await Room.objects.acount() == 2 and not await Message.objects.aexists()


PRIVATE = [
    ("GET", "/rooms/den", None),
    ("GET", "/rooms/den/members", None),
    ("GET", "/rooms/den/messages", None),
    ("POST", "/rooms/den/messages", {"body": "x", "client_id": str(uuid.uuid4())}),
    ("PUT", "/rooms/den/read", {"seq": 0}),
    ("PATCH", "/rooms/den", {"title": "mine now"}),
    ("PUT", "/rooms/den/members/bob", None),
    ("DELETE", "/rooms/den/members/mod", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PRIVATE)
async def test_another_users_private_room_is_404_as_if_it_did_not_exist(
    api, users, method, path, body
):
    _alice, bob, _mod = users
    refused = error(await (await api(bob))(method, path, body), 404, "not_found")
    # The very answer for a room that does not exist: private names cannot be probed.
    missing = error(
        await (await api(bob))(method, path.replace("den", "nowhere"), body), 404, "not_found"
    )
    assert refused == missing.replace("nowhere", "den")
    den = await Room.objects.aget(slug="den")
    assert den.title == "Den" and not await Message.objects.aexists()
    assert await Membership.objects.filter(room=den).acount() == 2


async def test_rooms_list_create_read_and_update(api, users):
    alice, bob, mod = users
    as_alice, as_bob, as_mod = await api(alice), await api(bob), await api(mod)
    rows = (await as_alice("GET", "/rooms")).json()
    assert [(r["slug"], r["role"]) for r in rows] == [("den", "owner"), ("lobby", "owner")]
    assert [r["slug"] for r in (await as_bob("GET", "/rooms")).json()] == ["lobby"]

    created = await as_bob("POST", "/rooms", {"slug": "bobs", "title": "Bob's", "private": True})
    assert created.status_code == 201
    assert created.json() == {
        "slug": "bobs",
        "title": "Bob's",
        "private": True,
        "kind": "room",
        "members": [],
        "guests_can_write": True,
        "last_seq": 0,
        "role": "owner",
        "last_read_seq": 0,
        "unread": 0,
        "mentions": 0,
    }
    error(await as_alice("POST", "/rooms", {"slug": "bobs"}), 409, "conflict")
    assert "slug" in error(await as_alice("POST", "/rooms", {"slug": "No Way"}), 400, "bad_request")
    error(await as_alice("POST", "/rooms", {"slug": "x", "private": "yes"}), 400, "bad_request")
    error(await as_alice("POST", "/rooms", {"slug": "x", "owner": "me"}), 400, "bad_request")

    assert (await as_bob("GET", "/rooms/lobby")).json()["role"] is None
    error(await as_bob("GET", "/rooms/nowhere"), 404, "not_found")
    error(await as_bob("PATCH", "/rooms/lobby", {"title": "bob's lobby"}), 403, "forbidden")
    changed = await as_mod("PATCH", "/rooms/den", {"title": "The den"})
    assert changed.status_code == 200 and changed.json()["title"] == "The den"
    assert (await Room.objects.aget(slug="den")).private  # a PATCH leaves out what it omits
    error(await as_alice("PATCH", "/rooms/den", {"title": "  "}), 400, "bad_request")


async def test_membership_add_list_and_remove(api, users):
    alice, bob, mod = users
    as_alice, as_bob, as_mod = await api(alice), await api(bob), await api(mod)
    assert (await as_mod("PUT", "/rooms/den/members/bob")).status_code == 204
    assert (await as_mod("PUT", "/rooms/den/members/bob")).status_code == 204  # idempotent
    members = (await as_bob("GET", "/rooms/den/members")).json()
    assert [(m["username"], m["role"]) for m in members] == [
        ("alice", "owner"), ("bob", "member"), ("mod", "moderator"),
    ]  # fmt: skip
    error(await as_mod("PUT", "/rooms/den/members/nobody"), 404, "not_found")
    error(await as_bob("DELETE", "/rooms/den/members/mod"), 403, "forbidden")
    error(await as_mod("DELETE", "/rooms/den/members/alice"), 403, "forbidden")
    assert (await as_bob("DELETE", "/rooms/den/members/bob")).status_code == 204  # leaving
    error(await as_bob("GET", "/rooms/den"), 404, "not_found")
    assert (await as_alice("DELETE", "/rooms/den/members/mod")).status_code == 204
    error(await as_alice("DELETE", "/rooms/den/members/mod"), 404, "not_found")


async def test_history_pages_by_seq(api, users):
    alice, _bob, _mod = users
    as_alice = await api(alice)
    for i in range(5):
        body = {"body": f"m{i}", "client_id": str(uuid.uuid4())}
        assert (await as_alice("POST", "/rooms/lobby/messages", body)).status_code == 201

    async def page(query: str) -> tuple[list[int], bool]:
        response = await as_alice("GET", "/rooms/lobby/messages" + query)
        assert response.status_code == 200, response.text
        return [m["seq"] for m in response.json()["messages"]], response.json()["complete"]

    assert await page("") == ([1, 2, 3, 4, 5], True)
    assert await page("?limit=2") == ([4, 5], False)
    assert await page("?before=4&limit=2") == ([2, 3], False)
    assert await page("?before=3") == ([1, 2], True)
    assert await page("?after=2&limit=2") == ([3, 4], False)
    assert await page("?after=4") == ([5], True)
    for bad in ("?before=1&after=1", "?limit=0", "?limit=101", "?before=x", "?after=-1"):
        error(await as_alice("GET", "/rooms/lobby/messages" + bad), 400, "bad_request")


async def test_posting_is_idempotent_by_client_id_and_validated(api, users):
    _alice, bob, _mod = users
    as_bob = await api(bob)
    client_id = str(uuid.uuid4())
    first = await as_bob("POST", "/rooms/lobby/messages", {"body": "once", "client_id": client_id})
    again = await as_bob("POST", "/rooms/lobby/messages", {"body": "once", "client_id": client_id})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {
        "type": "ack", "client_id": client_id, "room": "lobby", "seq": 1,
    }  # fmt: skip
    for bad in (
        {"body": "", "client_id": str(uuid.uuid4())},
        {"body": "x" * 4001, "client_id": str(uuid.uuid4())},
        {"body": "nul\x00", "client_id": str(uuid.uuid4())},
        {"body": "x", "client_id": "not-a-uuid"},
        {"body": "x"},
        {"body": 5, "client_id": str(uuid.uuid4())},
    ):
        response = await as_bob("POST", "/rooms/lobby/messages", bad)
        assert response.status_code in (400, 413), (bad, response.text)
    error(await as_bob("POST", "/rooms/lobby/messages", content=b"{not json"), 400, "bad_request")
    assert await Message.objects.acount() == 1


async def test_read_markers_move_forward_only(api, users):
    alice, _bob, mod = users
    as_alice, as_mod = await api(alice), await api(mod)
    for i in range(3):
        await as_alice(
            "POST", "/rooms/den/messages", {"body": f"{i}", "client_id": str(uuid.uuid4())}
        )
    assert (await as_mod("GET", "/rooms/den")).json()["unread"] == 3
    assert (await as_mod("PUT", "/rooms/den/read", {"seq": 2})).status_code == 204
    assert (await as_mod("PUT", "/rooms/den/read", {"seq": 1})).status_code == 204
    room = (await as_mod("GET", "/rooms/den")).json()
    assert (room["last_read_seq"], room["unread"]) == (2, 1)
    error(await as_mod("PUT", "/rooms/den/read", {"seq": "3"}), 400, "bad_request")


async def test_tokens_are_created_listed_and_revoked(api, users):
    alice, bob, _mod = users
    as_alice = await api(alice)
    created = await as_alice("POST", "/tokens", {"name": "my bot"})
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = (await as_alice("GET", "/tokens")).json()
    assert [t["name"] for t in listed] == ["my bot", ""]  # newest first, with the fixture's
    assert all("token" not in t for t in listed)
    assert (await Api(secret)("GET", "/tokens")).status_code == 200

    error(await (await api(bob))("DELETE", f"/tokens/{created.json()['id']}"), 404, "not_found")
    assert (await as_alice("DELETE", f"/tokens/{created.json()['id']}")).status_code == 204
    error(await Api(secret)("GET", "/tokens"), 401, "unauthorized")
    assert await ApiToken.objects.filter(user=alice).acount() == 1


async def test_a_message_posted_over_http_reaches_the_rooms_sockets_once(api, connect, users):
    alice, bob, _mod = users
    socket, _ = await connect(user=bob)
    await socket.join("lobby")
    as_alice = await api(alice)
    client_id = str(uuid.uuid4())
    for _ in range(2):  # a resend is acknowledged, not delivered again
        await as_alice(
            "POST", "/rooms/lobby/messages", {"body": "from http", "client_id": client_id}
        )
    message = await socket.expect("message")
    assert (message["body"], message["author"]["name"], message["seq"]) == ("from http", "alice", 1)
    assert message["client_id"] == client_id
    assert await socket.nothing()


async def test_a_revoked_token_no_longer_connects(api, users):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    alice, _bob, _mod = users
    as_alice = await api(alice)
    created = (await as_alice("POST", "/tokens", {"name": "bot"})).json()
    headers = [(b"authorization", f"Bearer {created['token']}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await communicator.connect())[0]
    await communicator.disconnect()
    await as_alice("DELETE", f"/tokens/{created['id']}")
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert not (await communicator.connect())[0]


async def test_an_open_socket_closes_when_its_token_is_revoked(api, users):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    alice, _bob, _mod = users
    as_alice = await api(alice)
    sockets = {}
    for name in ("revoked", "kept"):
        created = (await as_alice("POST", "/tokens", {"name": name})).json()
        headers = [(b"authorization", f"Bearer {created['token']}".encode())]
        sockets[name] = (WebsocketCommunicator(application, "/ws/chat/", headers=headers), created)
        assert (await sockets[name][0].connect())[0]
        assert (await sockets[name][0].receive_json_from())["type"] == "hello"
    revoked, kept = sockets["revoked"][0], sockets["kept"][0]

    await as_alice("DELETE", f"/tokens/{sockets['revoked'][1]['id']}")
    frame = await revoked.receive_json_from(timeout=5)
    assert (frame["type"], frame["code"]) == ("error", "unauthorized")
    assert (await revoked.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}
    await kept.send_json_to({"type": "ping"})
    assert (await kept.receive_json_from())["type"] == "pong"
    await kept.disconnect()


async def test_the_sweep_closes_a_socket_whose_revocation_event_was_lost(connect, make_user):
    """If the channel layer loses the event, the sweep's token check closes the socket."""
    bob = await database_sync_to_async(make_user)("bob")
    socket, _ = await connect(user=bob)
    await socket.join("lobby")
    await ApiToken.objects.filter(user=bob).adelete()  # no event: as if the layer lost it
    assert await socket.nothing()
    await sweep.sweep({})
    frame = await socket.expect("error")
    assert frame["code"] == "unauthorized" and "revoked" in frame["detail"]
    assert await socket.communicator.receive_output(timeout=5) == {
        "type": "websocket.close", "code": 4401,
    }  # fmt: skip


async def test_the_browser_session_works_with_its_csrf_token_and_not_without(users):
    from django.test import AsyncClient

    alice, _bob, _mod = users
    browser = AsyncClient(enforce_csrf_checks=True)
    await browser.aforce_login(alice)
    assert (await browser.get("/api/v1/rooms")).status_code == 200
    forged = await browser.post(
        "/api/v1/rooms", {"slug": "forged"}, content_type="application/json"
    )
    assert forged.status_code == 403 and forged.json()["code"] == "forbidden"
    page = await browser.get("/settings/tokens")  # any page sets the CSRF cookie
    token = page.cookies["csrftoken"].value
    made = await browser.post(
        "/api/v1/rooms",
        {"slug": "real"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert made.status_code == 201
    assert [r.slug async for r in Room.objects.order_by("slug")] == ["den", "lobby", "real"]

"""The consumer through the real ASGI stack (auth, origin, routing) on the in-memory layer."""

import json
import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client as HttpClient

from chat.models import Membership, Message, Room
from chat.services.broadcast import changes_announced
from chat.services.rooms import room_create
from tests.factories import member_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


async def stored_bodies(slug="lobby"):
    return [m.body async for m in Message.objects.filter(room__slug=slug).order_by("seq")]


async def assert_alive(client):
    await client.send({"type": "ping"})
    assert await client.expect("pong") == {"type": "pong"}


# --- hello, join, send, ack, message ------------------------------------------------


async def test_hello_names_the_user(connect, alice):
    _, hello = await connect(user=alice)
    assert hello["user"] == {"name": "alice", "guest": False}
    assert hello["protocol"] == 1
    assert hello["limits"]["max_body_chars"] == 4000


async def test_joining_makes_no_room_but_the_sites_own_which_no_user_owns(connect, alice):
    client, _ = await connect(user=alice)
    await client.send({"type": "join", "room": "newroom"})
    error = await client.expect("error")
    assert (error["code"], error["detail"]) == ("not_found", "no room 'newroom'")
    assert not await Room.objects.filter(slug="newroom").aexists()
    joined = await client.join("lobby")
    assert joined == {
        "type": "joined",
        "room": "lobby",
        "title": "lobby",
        "private": False,
        "kind": "room",
        "members": [],
        "guests_can_write": True,
        "last_seq": 0,
        "messages": [],
        "complete": True,
    }
    membership = await Membership.objects.select_related("user", "room").aget(room__slug="lobby")
    assert (membership.user.username, membership.role) == ("alice", "member")
    assert membership.room.creator_id is None


async def test_send_acks_the_sender_and_reaches_every_member(connect, alice, bob):
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    client_id = str(uuid.uuid4())
    await a.send({"type": "send", "room": "lobby", "body": "hi bob", "client_id": client_id})
    frames = [await a.recv(), await a.recv()]
    ack = next(f for f in frames if f["type"] == "ack")
    mine = next(f for f in frames if f["type"] == "message")
    assert ack == {"type": "ack", "client_id": client_id, "room": "lobby", "seq": 1}
    theirs = await b.expect("message")
    assert theirs == mine
    assert theirs["author"] == {"name": "alice", "guest": False}
    assert (theirs["seq"], theirs["body"], theirs["client_id"]) == (1, "hi bob", client_id)
    assert theirs["created"].endswith(("Z", "+00:00")) and theirs["edited"] is None
    assert await stored_bodies() == ["hi bob"]


async def test_a_process_is_one_member_of_a_room_group_whatever_its_sockets(connect, alice, bob):
    from channels.layers import get_channel_layer

    from chat.services.broadcast import room_group

    group = get_channel_layer().groups
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    [relay] = group[room_group("lobby")]  # the process's relay, not a channel per socket
    await a.say("lobby", "to both")
    assert (await b.expect("message"))["body"] == "to both"

    await b.send({"type": "leave", "room": "lobby"})
    await b.expect("left")
    assert list(group[room_group("lobby")]) == [relay]  # alice is still here
    await a.send({"type": "leave", "room": "lobby"})
    await a.expect("left")
    assert not group.get(room_group("lobby"))


async def test_resend_with_the_same_client_id_is_acked_with_the_first_seq(connect, alice, bob):
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    client_id = str(uuid.uuid4())
    first = await a.say("lobby", "once", client_id)
    await b.expect("message")
    second = await a.say("lobby", "once", client_id, echo=False)
    assert first["seq"] == second["seq"] == 1
    assert await b.nothing(), "a resend must not be broadcast again"
    assert await stored_bodies() == ["once"]


async def test_join_with_since_returns_exactly_the_messages_after_it(connect, alice):
    client, _ = await connect(user=alice)
    await client.join("lobby")
    for i in range(5):
        await client.say("lobby", f"m{i + 1}")
    rejoin, _ = await connect(user=alice)
    joined = await rejoin.join("lobby", since=2)
    assert [m["seq"] for m in joined["messages"]] == [3, 4, 5]
    assert [m["body"] for m in joined["messages"]] == ["m3", "m4", "m5"]
    assert (joined["last_seq"], joined["complete"]) == (5, True)


async def test_a_gap_larger_than_a_page_is_incomplete_and_pages_on(connect, alice, settings):
    settings.CHAT_HISTORY_PAGE = 3
    client, _ = await connect(user=alice)
    await client.join("lobby")
    for i in range(7):
        await client.say("lobby", f"m{i + 1}")
    late, _ = await connect(user=alice)
    joined = await late.join("lobby", since=1)
    assert [m["seq"] for m in joined["messages"]] == [2, 3, 4]
    assert joined["complete"] is False and joined["last_seq"] == 7
    await late.send({"type": "history", "room": "lobby", "after": 4})
    page = await late.expect("history")
    assert ([m["seq"] for m in page["messages"]], page["complete"]) == ([5, 6, 7], True)


async def test_join_without_since_returns_the_latest_page(connect, alice, settings):
    settings.CHAT_HISTORY_PAGE = 2
    client, _ = await connect(user=alice)
    await client.join("lobby")
    for i in range(4):
        await client.say("lobby", f"m{i + 1}")
    other, _ = await connect(user=alice)
    joined = await other.join("lobby")
    assert [m["seq"] for m in joined["messages"]] == [3, 4]
    assert joined["complete"] is True


async def test_history_pages_backwards_and_forwards(connect, alice):
    client, _ = await connect(user=alice)
    await client.join("lobby")
    for i in range(5):
        await client.say("lobby", f"m{i + 1}")
    await client.send({"type": "history", "room": "lobby", "before": 5, "limit": 2})
    page = await client.expect("history")
    assert ([m["seq"] for m in page["messages"]], page["complete"]) == ([3, 4], False)
    assert (page["before"], page["after"]) == (5, None), "the cursors are echoed"
    await client.send({"type": "history", "room": "lobby", "before": 3, "limit": 5})
    page = await client.expect("history")
    assert ([m["seq"] for m in page["messages"]], page["complete"]) == ([1, 2], True)
    await client.send({"type": "history", "room": "lobby", "after": 1, "limit": 2})
    page = await client.expect("history")
    assert ([m["seq"] for m in page["messages"]], page["complete"]) == ([2, 3], False)


async def test_a_broadcast_of_a_message_already_sent_is_skipped(connect, alice):
    # The race this covers: a message commits after the socket subscribed but
    # before it read history, so it is in `joined` and also broadcast live.
    from chat import protocol
    from chat.services.broadcast import room_broadcast

    client, _ = await connect(user=alice)
    await client.join("lobby")
    await client.say("lobby", "first")
    late, _ = await connect(user=alice)
    joined = await late.join("lobby")
    assert joined["last_seq"] == 1
    replay = protocol.MessageOut.model_validate_json(json.dumps(joined["messages"][0]))
    await room_broadcast(room="lobby", frame=replay, seq=1)
    assert await late.nothing()
    assert await client.nothing()  # it had it live: a socket never gets a seq twice
    await client.say("lobby", "second")
    assert (await late.expect("message"))["seq"] == 2


async def test_leave_stops_delivery(connect, alice, bob):
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    await b.send({"type": "leave", "room": "lobby"})
    assert await b.expect("left") == {"type": "left", "room": "lobby", "reason": "leave"}
    await a.say("lobby", "anyone?")
    assert await b.nothing()
    await b.send({"type": "send", "room": "lobby", "body": "x", "client_id": str(uuid.uuid4())})
    error = await b.expect("error")
    assert (error["code"], error["detail"]) == ("bad_request", "join room 'lobby' first")


async def test_typing_reaches_the_others_but_not_the_typist(connect, alice, bob):
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    await a.send({"type": "typing", "room": "lobby"})
    typing = await b.expect("typing")
    assert typing == {"type": "typing", "room": "lobby", "user": {"name": "alice", "guest": False}}
    assert await a.nothing()


async def test_ping_pong(connect, alice):
    client, _ = await connect(user=alice)
    await assert_alive(client)


async def test_room_in_the_path_is_joined_on_connect(connect, alice):
    client, _ = await connect(user=alice, path="/ws/chat/lobby/")
    joined = await client.expect("joined")
    assert joined["room"] == "lobby"


async def test_bad_room_in_the_path_gets_an_error_and_the_socket_stays(connect, alice):
    client, _ = await connect(user=alice, path="/ws/chat/Not%20OK/")
    error = await client.expect("error")
    assert (error["code"], error["ref"]) == ("bad_request", "join")
    await assert_alive(client)


# --- errors: every code, and the socket survives ---------------------------------


def send_frame(**fields) -> str:
    frame = {"type": "send", "room": "lobby", "body": "hi", "client_id": str(uuid.uuid4())}
    return json.dumps({**frame, **fields})


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_request"),
        ('{"type":"fly"}', "bad_request"),
        (send_frame(body=""), "bad_request"),
        (send_frame(client_id="nope"), "bad_request"),
        (send_frame(room="LOBBY!"), "bad_request"),
        (send_frame(body="x" * 4001), "too_large"),
        (send_frame(body="x" * 70_000), "too_large"),
    ],
)
async def test_invalid_frames_get_an_error_store_nothing_and_the_socket_survives(
    connect, alice, frame, code
):
    client, _ = await connect(user=alice)
    await client.join("lobby")
    await client.send(frame)
    error = await client.expect("error")
    assert error["code"] == code and error["detail"]
    await assert_alive(client)
    assert await stored_bodies() == []
    await client.say("lobby", "still works")
    assert await stored_bodies() == ["still works"]


async def test_error_ref_echoes_the_client_id(connect, alice):
    client, _ = await connect(user=alice)
    client_id = str(uuid.uuid4())
    await client.send({"type": "send", "room": "lobby", "body": "hi", "client_id": client_id})
    error = await client.expect("error")
    assert (error["code"], error["ref"]) == ("bad_request", client_id)


async def test_binary_frames_are_refused(connect, alice):
    client, _ = await connect(user=alice)
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    error = await client.expect("error")
    assert error["code"] == "bad_request" and "binary" in error["detail"]
    await assert_alive(client)


async def test_sending_too_fast_is_rate_limited_with_retry_after(connect, alice, settings):
    settings.CHAT_SEND_BURST = 3
    settings.CHAT_SEND_PER_MINUTE = 1
    client, _ = await connect(user=alice)
    await client.join("lobby")
    for i in range(3):
        await client.say("lobby", f"m{i}")
    client_id = str(uuid.uuid4())
    await client.send({"type": "send", "room": "lobby", "body": "one more", "client_id": client_id})
    error = await client.expect("error")
    assert (error["code"], error["ref"]) == ("rate_limited", client_id)
    assert 0 < error["retry_after"] <= 60
    assert await stored_bodies() == ["m0", "m1", "m2"]
    await assert_alive(client)


async def test_guests_cannot_create_rooms(connect, guests_allowed):
    client, hello = await connect(path="/ws/chat/?name=ada")
    assert hello["user"] == {"name": "ada", "guest": True}
    await client.send({"type": "join", "room": "newroom"})
    error = await client.expect("error")
    assert (error["code"], error["ref"]) == ("not_found", "join")
    assert not await Room.objects.filter(slug="newroom").aexists()


async def test_guests_open_the_default_rooms(connect, guests_allowed, settings):
    settings.CHAT_DEFAULT_ROOMS = ["lobby"]
    client, _ = await connect()
    joined = await client.join("lobby")
    assert (joined["room"], joined["private"]) == ("lobby", False)
    room = await Room.objects.aget(slug="lobby")
    assert room.creator_id is None
    assert not await Membership.objects.aexists()


async def test_guests_chat_in_existing_public_rooms(connect, guests_allowed, alice):
    await room_create(slug="hall", creator=alice)
    client, _ = await connect(path="/ws/chat/")
    await client.join("hall")
    ack = await client.say("hall", "hello as a guest")
    message = await Message.objects.aget(room__slug="hall", seq=ack["seq"])
    assert message.author_id is None and message.author_name.startswith("guest-")


async def test_without_guests_an_anonymous_socket_is_told_and_closed(connect):
    client, _ = await connect(expect_hello=False)
    error = await client.expect("error")
    assert error["code"] == "unauthorized"
    closed = await client.communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_bad_guest_name_is_told_and_closed(connect, guests_allowed):
    client, _ = await connect(path="/ws/chat/?name=%3Cscript%3E", expect_hello=False)
    error = await client.expect("error")
    assert error["code"] == "bad_request" and "guest name" in error["detail"]
    closed = await client.communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4400}


# --- private rooms: checked on every frame ----------------------------------------


@pytest.fixture
async def secret(alice):
    return await room_create(slug="secret", creator=alice, private=True)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join", "room": "secret"},
        {"type": "join", "room": "secret", "since": 0},
    ],
)
async def test_non_members_cannot_join_a_private_room(connect, secret, bob, frame):
    client, _ = await connect(user=bob)
    await client.send(frame)
    error = await client.expect("error")
    # The answer for a room that does not exist: private names cannot be probed.
    assert (error["code"], error["detail"]) == ("not_found", "no room 'secret'")
    await assert_alive(client)


async def test_guests_cannot_join_a_private_room(connect, secret, guests_allowed):
    client, _ = await connect()
    await client.send({"type": "join", "room": "secret"})
    assert (await client.expect("error"))["code"] == "not_found"


async def test_members_use_a_private_room(connect, secret, alice, bob):
    await database_sync_to_async(member_make)(room=secret, user=bob)
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("secret")
    joined = await b.join("secret")
    assert joined["private"] is True
    await b.say("secret", "members only")
    assert (await a.expect("message"))["body"] == "members only"


async def test_access_is_checked_on_every_frame_not_only_on_join(connect, secret, alice, bob):
    membership = await database_sync_to_async(member_make)(room=secret, user=bob)
    b, _ = await connect(user=bob)
    await b.join("secret")
    with changes_announced():  # and the announcement lost: no socket hears of it
        await membership.adelete()
    for frame in [
        {"type": "send", "room": "secret", "body": "still here?", "client_id": str(uuid.uuid4())},
        {"type": "history", "room": "secret"},
        {"type": "typing", "room": "secret"},
    ]:
        await b.send(frame)
        assert (await b.expect("error"))["code"] == "not_found", frame
    assert await stored_bodies("secret") == []


# --- the handshake: tokens, cookies and origins ------------------------------------


async def test_token_clients_need_no_origin(connect, alice):
    _, hello = await connect(user=alice, origin=None)
    assert hello["user"]["name"] == "alice"


@pytest.mark.parametrize("authorization", [b"Bearer chat_wrong", b"Bearer ", b"Basic abc"])
async def test_a_bad_token_is_refused_at_the_handshake(authorization, transactional_db):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", authorization)]
    )
    connected, _ = await communicator.connect()
    assert not connected


def session_cookie(user) -> bytes:
    http = HttpClient()
    http.force_login(user)
    return f"sessionid={http.cookies['sessionid'].value}".encode()


async def test_browsers_authenticate_with_the_session_cookie(connect, alice):
    cookie = await database_sync_to_async(session_cookie)(alice)
    _, hello = await connect(headers=[(b"cookie", cookie)])
    assert hello["user"] == {"name": "alice", "guest": False}


@pytest.mark.parametrize("origin", ["http://evil.example", "null", None])
async def test_cookie_sockets_from_a_foreign_or_missing_origin_are_refused(
    alice, origin, transactional_db
):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [(b"cookie", cookie)] + ([(b"origin", origin.encode())] if origin else [])
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_any_socket_from_a_foreign_origin_is_refused(alice, transactional_db):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_an_explicit_origin_list_replaces_the_hosts(alice, settings, transactional_db):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    settings.CHAT_ALLOWED_ORIGINS = ["https://chat.example.com"]
    cookie = await database_sync_to_async(session_cookie)(alice)
    for origin, allowed in [
        (b"https://chat.example.com", True),
        (b"http://chat.example.com", False),  # another scheme is another origin
        (b"http://localhost", False),  # allowed by ALLOWED_HOSTS, but not listed
    ]:
        headers = [(b"cookie", cookie), (b"origin", origin)]
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        assert (await communicator.connect())[0] is allowed, origin
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("origin", "host", "forwarded", "allowed"),
    [
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000", None, True),
        (b"http://127.0.0.1:9999", b"127.0.0.1:8000", None, False),  # another port
        (b"https://127.0.0.1", b"127.0.0.1:8000", None, False),  # another scheme and port
        (b"https://127.0.0.1:8000", b"127.0.0.1:8000", None, False),  # another scheme
        (b"ws://127.0.0.1:8000", b"127.0.0.1:8000", None, False),  # not a page's origin
        (b"http://localhost:80", b"localhost", None, True),  # the default port, explicit
        (b"http://evil.example", b"evil.example", None, False),  # not under ALLOWED_HOSTS
        (b"https://localhost", b"localhost", b"https", False),  # X-Forwarded-Proto: HTTPS=1 only
    ],
)
async def test_by_default_only_the_sites_own_origin_is_allowed(
    alice, origin, host, forwarded, allowed, transactional_db
):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [(b"cookie", cookie), (b"origin", origin), (b"host", host)]
    if forwarded:
        headers.append((b"x-forwarded-proto", forwarded))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await communicator.connect())[0] is allowed
    await communicator.disconnect()


async def test_behind_a_tls_proxy_the_forwarded_scheme_is_the_sites(
    alice, settings, transactional_db
):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    settings.HTTPS = True
    cookie = await database_sync_to_async(session_cookie)(alice)
    for origin, allowed in [(b"https://localhost", True), (b"http://localhost", False)]:
        headers = [(b"cookie", cookie), (b"origin", origin), (b"host", b"localhost")]
        headers.append((b"x-forwarded-proto", b"https"))
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        assert (await communicator.connect())[0] is allowed, origin
        await communicator.disconnect()


async def test_a_fault_is_answered_every_time_but_logged_a_few_times(
    connect, alice, monkeypatch, caplog
):
    async def broken(**kwargs):
        raise RuntimeError("a server fault")

    client, _ = await connect(user=alice)
    await client.join("lobby")
    monkeypatch.setattr("chat.realtime.consumer.history_page", broken)
    for _ in range(20):
        await client.send({"type": "history", "room": "lobby"})
        assert (await client.expect("error"))["code"] == "internal_error"
    tracebacks = [r for r in caplog.records if r.exc_info and r.name == "chat.realtime.consumer"]
    assert 1 <= len(tracebacks) <= 3  # one client cannot flood the log

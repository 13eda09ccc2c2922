"""Defects an outside probe found, each through real daphne processes: the
high and medium ones across two processes sharing Redis and the database."""

import asyncio
import json
import re
import socket
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async
from django.contrib.auth.hashers import make_password

from chat.models import Membership, Message, ModerationLog, Room, Sanction
from chat.services.rooms import room_create
from tests.conftest import REDIS_URL, TIMEOUT, WsClient
from tests.factories import member_make, room_make, token_make

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST = {"CHAT_SWEEP_SECONDS": "0.5", "CHAT_PRESENCE_TTL": "3"}


@pytest.fixture
def two(start_server):
    """Two server processes on the test database and Redis, under a prefix of their own."""

    def start(**env: str):
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        return [
            start_server(redis_url=REDIS_URL, CHANNEL_LAYER_PREFIX=prefix, **{**FAST, **env})
            for _ in range(2)
        ]

    return start


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_make(user=user)}"}


async def left_reason(client: WsClient, room: str) -> str:
    """The reason of the next `left` frame for the room (messages may come first)."""
    while True:
        frame = await client.recv()
        if frame["type"] == "left" and frame["room"] == room:
            return frame["reason"]


# --- 1. A room made private: guests leave it at once, on every process ---------------


@pytest.mark.redis
async def test_a_room_made_private_is_left_by_guests_at_once_on_every_process(two, make_user):
    owner = await database_sync_to_async(make_user)("owner")
    await room_create(slug="club", creator=owner)
    headers = await database_sync_to_async(bearer)(owner)
    a, b = two(CHAT_SWEEP_SECONDS="3600")  # no sweep: the notice alone must do it
    guest = await WsClient.open(f"{b.ws_url}?name=visitor")
    await guest.send({"type": "join", "room": "club"})
    await guest.expect("joined")
    member = await WsClient.open(b.ws_url, additional_headers=headers)
    await member.send({"type": "join", "room": "club"})
    await member.expect("joined")

    async with httpx.AsyncClient(base_url=a.http_url, headers=headers) as http:
        changed = await http.patch("/api/v1/rooms/club", json={"private": True})
        assert changed.status_code == 200, changed.text
        assert await left_reason(guest, "club") == "private"
        posted = await http.post(
            "/api/v1/rooms/club/messages",
            json={"body": "members only", "client_id": str(uuid.uuid4())},
        )
        assert posted.status_code == 201
    assert (await member.expect("message"))["body"] == "members only"  # members still read
    assert await guest.nothing(timeout=1)
    await guest.send({"type": "join", "room": "club"})
    assert (await guest.expect("error"))["code"] == "not_found"


@pytest.mark.redis
async def test_the_sweep_takes_guests_out_of_a_room_made_private_without_a_notice(two, make_user):
    owner = await database_sync_to_async(make_user)("owner")
    await room_create(slug="club", creator=owner)
    _, b = two()
    guest = await WsClient.open(f"{b.ws_url}?name=visitor")
    await guest.send({"type": "join", "room": "club"})
    await guest.expect("joined")
    await Room.objects.filter(slug="club").aupdate(private=True)  # as if the notice were lost
    assert await left_reason(guest, "club") == "private"


# --- 2. A refused join writes nothing ------------------------------------------------


@pytest.mark.redis
async def test_a_banned_users_refused_join_restores_no_membership(two, make_user):
    def setup():
        owner, mel = make_user("owner"), make_user("mel")
        club = room_make(slug="club", creator=owner)
        Sanction.objects.create(room=club, user=mel, kind=Sanction.Kind.BAN, by=owner)
        return bearer(mel)

    headers = await database_sync_to_async(setup)()
    a, b = two()
    for server in (a, b):
        mel = await WsClient.open(server.ws_url, additional_headers=headers)
        await mel.send({"type": "join", "room": "club"})
        assert (await mel.expect("error"))["code"] == "forbidden"
    assert not await Membership.objects.filter(user__username="mel").aexists()
    # The room goes private and the ban ends: mel is no member, and cannot read it.
    await Room.objects.filter(slug="club").aupdate(private=True)
    await Sanction.objects.all().adelete()
    await mel.send({"type": "join", "room": "club"})
    assert (await mel.expect("error"))["code"] == "not_found"
    async with httpx.AsyncClient(base_url=b.http_url, headers=headers) as http:
        assert (await http.get("/api/v1/rooms/club/messages")).status_code == 404


# --- 3. Only the owner removes or sanctions a moderator, on every path ----------------


@pytest.mark.redis
async def test_a_moderator_cannot_remove_another_moderator_over_http(two, make_user):
    def setup():
        owner, mod, mod2 = make_user("owner"), make_user("mod"), make_user("mod2")
        club = room_make(slug="club", creator=owner)
        for user in (mod, mod2):
            member_make(room=club, user=user, role=Membership.Role.MODERATOR)
        return bearer(owner), bearer(mod)

    as_owner, as_mod = await database_sync_to_async(setup)()
    a, b = two()
    async with httpx.AsyncClient(base_url=a.http_url, headers=as_mod) as http:
        refused = await http.delete("/api/v1/rooms/club/members/mod2")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        kick = await http.post(
            "/api/v1/rooms/club/moderation", json={"action": "kick", "user": "mod2"}
        )
        assert kick.status_code == 403  # the same rule as the socket's
    role = Membership.objects.filter(user__username="mod2").values_list("role", flat=True)
    assert await role.afirst() == "moderator"
    assert not await ModerationLog.objects.aexists()
    async with httpx.AsyncClient(base_url=b.http_url, headers=as_owner) as http:
        assert (await http.delete("/api/v1/rooms/club/members/mod2")).status_code == 204
    assert not await Membership.objects.filter(user__username="mod2").aexists()


# --- 4. The admin keeps the streams' invariants --------------------------------------


@pytest.fixture
def staff(make_user):
    """A superuser who signs in to a server process's admin (with password "pw")."""
    user = make_user("staff", is_staff=True, is_superuser=True)
    user.password = make_password("pw", hasher="pbkdf2_sha256")
    user.save()
    return user


async def admin_session(server: Any, username: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=server.http_url)
    await http.get("/admin/login/")
    signed_in = await http.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username, "password": "pw", "next": "/admin/",
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
    )  # fmt: skip
    assert signed_in.status_code == 302, signed_in.text
    return http


@pytest.mark.redis
async def test_a_message_deleted_in_the_admin_is_a_broadcast_logged_delete_entry(
    two, make_user, staff
):
    def setup():
        alice = make_user("alice")
        room_make(slug="club", creator=alice)
        return bearer(alice)

    headers = await database_sync_to_async(setup)()
    a, b = two()
    alice = await WsClient.open(b.ws_url, additional_headers=headers)
    await alice.send({"type": "join", "room": "club"})
    await alice.expect("joined")
    await alice.send(
        {"type": "send", "room": "club", "body": "rude", "client_id": str(uuid.uuid4())}
    )
    # The ack and the sender's own copy, in either order (docs/architecture.md).
    assert sorted([(await alice.recv())["type"], (await alice.recv())["type"]]) == [
        "ack",
        "message",
    ]
    message = await Message.objects.aget(seq=1)
    admin = await admin_session(a, "staff")
    try:
        csrf = {"csrfmiddlewaretoken": admin.cookies["csrftoken"]}
        page = f"/admin/chat/message/{message.pk}"
        edited = await admin.post(f"{page}/change/", data={**csrf, "body": "edited by hand"})
        assert edited.status_code == 403  # read only
        deleted = await admin.post(f"{page}/delete/", data={**csrf, "post": "yes"})
        assert deleted.status_code == 302, deleted.text
    finally:
        await admin.aclose()
    entry = await alice.expect("message")
    assert (entry["kind"], entry["target"], entry["seq"]) == ("delete", 1, 2)
    rows = [(m.seq, m.kind, m.deleted) async for m in Message.objects.order_by("seq")]
    assert rows == [(1, "message", True), (2, "delete", False)]  # gapless: nothing removed
    log = await ModerationLog.objects.aget()
    assert (log.action, log.actor_name, log.target_name, log.seq) == ("delete", "staff", "alice", 1)


@pytest.mark.redis
async def test_a_room_made_private_in_the_admin_is_left_by_guests_at_once(two, staff):
    club = await room_create(slug="club", creator=staff)
    a, b = two(CHAT_SWEEP_SECONDS="3600")  # no sweep: the notice alone must do it
    guest = await WsClient.open(f"{b.ws_url}?name=visitor")
    await guest.send({"type": "join", "room": "club"})
    await guest.expect("joined")
    admin = await admin_session(a, "staff")
    try:
        form = {
            "slug": "club", "title": "Club", "private": "on", "guests_can_write": "on",
            "kind": "room", "dm_key": "", "creator": str(club.creator_id),
            "csrfmiddlewaretoken": admin.cookies["csrftoken"], "_save": "Save",
        }  # fmt: skip
        saved = await admin.post(f"/admin/chat/room/{club.pk}/change/", data=form)
        assert saved.status_code == 302, saved.text
    finally:
        await admin.aclose()
    assert await left_reason(guest, "club") == "private"


# --- 5. Uploads: refused by size before anything is written ----------------------------


def raw_request(port: int, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send a request's head and some body chunks; the server's whole answer
    (headers, and the body its Content-Length gives)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        answer = b""
        while data := sock.recv(65536):
            answer += data
            head, _, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head)
            if length and len(body) >= int(length.group(1)):
                break
        return answer


async def test_a_body_over_the_cap_is_refused_with_413_before_it_is_read(start_server):
    server = start_server(CHAT_MAX_UPLOAD_BYTES="100000")
    head = (
        b"POST /api/v1/rooms/lobby/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 209715200\r\n\r\n"
    )
    answer = await asyncio.to_thread(raw_request, server.port, head, [b"x" * 65536] * 8)
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:200]
    assert json.loads(body)["code"] == "too_large"
    # Answered with 200 MiB still to come (no credentials were even looked at);
    # a chunked body has no length: refused once what arrived passes the cap.
    head = head.replace(b"Content-Length: 209715200", b"Transfer-Encoding: chunked")
    head = head.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer not-checked-yet\r\n\r\n")
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    answer = await asyncio.to_thread(raw_request, server.port, head, [chunk] * 4)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_an_upload_just_over_the_limit_is_a_413_not_a_500(start_server, make_user):
    def setup():
        alice = make_user("alice")
        room_make(slug="club", creator=alice)
        return bearer(alice)

    headers = await database_sync_to_async(setup)()
    server = start_server(CHAT_MAX_UPLOAD_BYTES="100000")
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        # Refused by Django's upload handler, and (past the form's allowance) by daphne.
        for size in (100_001, 200_000):
            files = {"file": ("a.txt", b"a" * size, "text/plain")}
            refused = await http.post("/api/v1/rooms/club/attachments", files=files)
            assert (refused.status_code, refused.json()["code"]) == (413, "too_large"), size


async def test_attachments_are_streamed(api, make_user, settings, tmp_path):
    from django.test import AsyncClient

    settings.MEDIA_ROOT = tmp_path / "media"
    alice = await database_sync_to_async(make_user)("alice")
    await room_create(slug="club", creator=alice)
    as_alice = await api(alice)
    text = b"line\n" * 200_000  # 1 MB
    made = await as_alice.http.post(
        "/api/v1/rooms/club/attachments", files={"file": ("a.txt", text, "text/plain")}
    )
    assert made.status_code == 201, made.text
    authorization = {"Authorization": as_alice.http.headers["Authorization"]}
    response = await AsyncClient().get(made.json()["url"], headers=authorization)
    assert response.streaming and response["Content-Length"] == str(len(text))
    assert b"".join([part async for part in response.streaming_content]) == text


# --- 6. Deeply nested JSON ---------------------------------------------------------------


async def test_deeply_nested_frames_are_bad_requests_and_log_nothing(start_server):
    server = start_server()
    client = await WsClient.open(server.ws_url)
    for text in ["[" * 1500 + "]" * 1500, '{"type": "send", "x": ' + "[" * 1500 + "]" * 1500 + "}"]:
        for _ in range(20):
            await client.send(text)
            error = await client.expect("error")
            assert (error["code"], error["detail"]) == (
                "bad_request",
                "JSON nested deeper than 32 levels",
            )
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert "Traceback" not in server.log_path.read_text()


# --- 8. The WebSocket Origin must be the site's own ------------------------------------


async def test_only_the_sites_own_origin_opens_a_socket(start_server):
    server = start_server()
    site = f"http://127.0.0.1:{server.port}"
    for origin in ["http://127.0.0.1:9999", "https://127.0.0.1", f"ws://127.0.0.1:{server.port}"]:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(server.ws_url, origin=origin, open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 403, origin
    client = await WsClient.open(server.ws_url, origin=site)
    await client.close()


# --- 9. A guest cannot take a registered user's name -----------------------------------


async def test_a_guest_cannot_take_a_registered_users_name(start_server, make_user):
    await database_sync_to_async(make_user)("bob")
    server = start_server()
    for name in ("bob", "BOB", "Bob"):
        async with websockets.connect(f"{server.ws_url}?name={name}") as ws:
            error = json.loads(await ws.recv())
            assert (error["type"], error["code"]) == ("error", "bad_request")
            assert "registered user" in error["detail"]
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4400
    guest = await WsClient.open(f"{server.ws_url}?name=bobby")
    await guest.close()


# --- 10. A private room's name cannot be probed -------------------------------------------


async def test_a_private_room_answers_as_a_missing_one(start_server, make_user):
    def setup():
        owner, bob = make_user("owner"), make_user("bob")
        room_make(slug="den", creator=owner, private=True)
        return bearer(bob)

    headers = await database_sync_to_async(setup)()
    server = start_server()
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        for path in ("", "/messages", "/members"):
            there = await http.get(f"/api/v1/rooms/den{path}")
            missing = await http.get(f"/api/v1/rooms/nowhere{path}")
            assert there.status_code == missing.status_code == 404
            assert there.json() == {**missing.json(), "detail": "no room 'den'"}
    bob = await WsClient.open(server.ws_url, additional_headers=headers)
    answers = []
    for slug in ("den", "nowhere"):
        await bob.send({"type": "search", "q": "x", "room": slug})
        answers.append(await bob.expect("error"))
    assert answers == [
        {"type": "error", "code": "not_found", "detail": f"no room '{slug}'", "ref": "search",
         "retry_after": None}
        for slug in ("den", "nowhere")
    ]  # fmt: skip


async def test_a_join_or_a_room_to_create_tells_no_private_room_from_a_free_name(
    start_server, make_user
):
    def setup():
        owner, bob = make_user("owner"), make_user("bob")
        room_make(slug="den", creator=owner, private=True)
        room_make(slug="hall", creator=owner)
        return bearer(bob)

    headers = await database_sync_to_async(setup)()
    server = start_server(CHAT_ROOMS_BURST="3", CHAT_ROOMS_PER_HOUR="1")
    bob = await WsClient.open(server.ws_url, additional_headers=headers)
    answers = []
    for slug in ("den", "nowhere"):  # a join makes no room: both just are not there
        await bob.send({"type": "join", "room": slug})
        answers.append({**await bob.expect("error"), "detail": None})
    assert answers[0] == answers[1]
    assert not await Room.objects.filter(slug="nowhere").aexists()
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        taken = [
            (await http.post("/api/v1/rooms", json={"slug": s})).json() for s in ("den", "hall")
        ]
        assert taken == [
            {
                "code": "conflict",
                "detail": f"the name '{s}' is taken: choose another",
                "retry_after": None,
            }
            for s in ("den", "hall")
        ]  # fmt: skip, whoever holds the name, and whether or not one may see it
        assert (await http.post("/api/v1/rooms", json={"slug": "mine"})).status_code == 201
        tried = await http.post("/api/v1/rooms", json={"slug": "other"})
        assert (
            tried.status_code == 429 and tried.json()["retry_after"] > 0
        )  # names are tried slowly


# --- 11. Guests' sockets per address, and the header timeout ------------------------------


@pytest.mark.redis
async def test_guests_at_one_address_may_open_so_many_sockets_across_processes(two):
    a, b = two(CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS="3")
    opened = [
        await WsClient.open(f"{server.ws_url}?name=g{i}") for i, server in enumerate((a, b, a))
    ]
    async with websockets.connect(f"{b.ws_url}?name=g9") as fourth:
        error = json.loads(await fourth.recv())
        assert (error["code"], "per address" in error["detail"]) == ("forbidden", True)
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await fourth.recv()
    assert fourth.close_code == 4429
    await opened[0].close()
    async with asyncio.timeout(TIMEOUT):  # the slot frees once the server has seen the close
        while True:
            async with websockets.connect(f"{b.ws_url}?name=g9") as again:
                if json.loads(await again.recv())["type"] == "hello":
                    break


def slow_headers(port: int) -> bytes:
    """Open a connection and send a header byte every 0.2 s, for up to 10 s;
    what the server answers when it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for byte in b"X-Slow: " + b"a" * 50:
                sock.sendall(bytes([byte]))
                try:
                    sock.settimeout(0.2)
                    if data := sock.recv(65536):
                        return data
                    return b"closed"
                except TimeoutError:
                    continue
        except OSError:
            return b"closed"
        return b"still open"


async def test_an_upload_with_no_credentials_is_refused_before_its_body(start_server):
    server = start_server()
    head = (
        b"POST /api/v1/rooms/lobby/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 9000000\r\n\r\n"
    )
    answer = await asyncio.to_thread(raw_request, server.port, head, [])  # no body at all
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 401"), answer[:200]
    assert json.loads(body)["code"] == "unauthorized"


def slow_body(port: int, *, first: bytes, then_every_second: bytes) -> tuple[bytes, float]:
    """Send an upload's head and `first` of its 9 MB body, then a chunk a
    second (or nothing); the server's answer when it closes, and when."""
    head = (
        b"POST /api/v1/rooms/lobby/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer not-checked-until-the-body-is-in\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 9000000\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head + first)
        sock.settimeout(1)
        while time.monotonic() - started < 20:
            try:
                answer = sock.recv(65536)
                return answer or b"closed", time.monotonic() - started
            except TimeoutError:
                if then_every_second:
                    sock.sendall(then_every_second)
            except OSError:
                return b"closed", time.monotonic() - started
    return b"still open", time.monotonic() - started


async def test_a_request_body_that_stops_or_trickles_is_closed(start_server):
    server = start_server(CHAT_HTTP_BODY_TIMEOUT="2", CHAT_HTTP_BODY_MIN_RATE="10000")
    stopped = asyncio.to_thread(slow_body, server.port, first=b"x" * 500_000, then_every_second=b"")
    trickle = asyncio.to_thread(slow_body, server.port, first=b"x", then_every_second=b"x")
    for answer, after in await asyncio.gather(stopped, trickle):
        assert answer.startswith(b"HTTP/1.1 408") or answer == b"closed", answer
        assert after < 6, after
    async with httpx.AsyncClient(base_url=server.http_url) as http:  # a prompt client is served
        assert (await http.get("/healthz")).status_code == 200


async def test_a_connection_must_send_its_headers_in_time(start_server):
    server = start_server(CHAT_HTTP_HEADER_TIMEOUT="1")
    answer = await asyncio.to_thread(slow_headers, server.port)
    assert answer.startswith(b"HTTP/1.1 408") or answer == b"closed", answer
    async with httpx.AsyncClient(base_url=server.http_url) as http:  # a prompt client is served
        assert (await http.get("/healthz")).status_code == 200


# --- 12. The access log holds paths, not queries ----------------------------------------


async def test_the_access_log_holds_no_query_strings(start_server, make_user):
    alice = await database_sync_to_async(make_user)("alice")
    headers = await database_sync_to_async(bearer)(alice)
    server = start_server()
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        assert (await http.get("/api/v1/search", params={"q": "my-secret-word"})).status_code == 200
    async with asyncio.timeout(TIMEOUT):
        # Another process writes the line, after the response: poll the file.
        while not re.search(r'"GET /api/v1/search" 200', server.log_path.read_text()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert "my-secret-word" not in server.log_path.read_text()


# --- 7. Link previews refuse IPv6 forms of private IPv4 addresses ----------------------


async def test_previews_refuse_ipv6_forms_of_private_ipv4_addresses(start_server):
    server = start_server()  # no Redis: this process fetches previews itself
    client = await WsClient.open(f"{server.ws_url}?name=prober")
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("joined")
    hosts = ["[::127.0.0.1]", "[::ffff:0:7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::1]"]
    for host in hosts:
        body = f"look http://{host}:{server.port}/healthz"
        await client.send(
            {"type": "send", "room": "lobby", "body": body, "client_id": str(uuid.uuid4())}
        )
        while (await client.recv())["type"] != "ack":
            pass  # its own copy may come first
    async with asyncio.timeout(TIMEOUT):
        # Another process writes the lines: poll the file.
        while server.log_path.read_text().count("is a private address") < len(hosts):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

"""GraphQL at /graphql/: over HTTP (queries, mutations, their refusals and
limits, CSRF, the cost of a page), the access matrix against REST's answers,
and subscriptions over real daphne processes sharing Redis and PostgreSQL."""

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from chat import protocol
from chat.actor import Actor
from chat.models import Message
from chat.services.dms import block_set, dm_send
from chat.services.messages import message_send, reaction_set
from chat.services.moderation import room_moderate
from chat.services.tokens import token_create, token_revoke
from tests.conftest import REDIS_URL, TIMEOUT, WsClient
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)

SUBPROTOCOL = "graphql-transport-ws"


class Gql:
    """An httpx client posting GraphQL to chatsite.asgi.application, as one token (or none)."""

    def __init__(self, token: str | None = None) -> None:
        from chatsite.asgi import application

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://localhost",
            headers=headers,
        )

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql/", json={"query": query, "variables": variables})
        return response.json()


def code(body: dict[str, Any]) -> str:
    """ "ok", or the first error's protocol code."""
    if not body.get("errors"):
        return "ok"
    return body["errors"][0]["extensions"]["code"]


@pytest.fixture
async def gql(make_user):
    clients: list[Gql] = []

    async def make(user: Any = None) -> Gql:
        token = None if user is None else (await token_create(user=user)).token
        clients.append(Gql(token))
        return clients[-1]

    yield make
    for client in clients:
        await client.http.aclose()


async def queries_during(coroutine: Any) -> tuple[Any, int]:
    """What the coroutine returned, and the SQL statements it ran on the ORM's thread."""
    ran: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        ran.append(sql)
        return execute(sql, params, many, context)

    wrapper = connection.execute_wrapper(count)
    await database_sync_to_async(wrapper.__enter__)()
    try:
        return await coroutine, len(ran)
    finally:
        await database_sync_to_async(wrapper.__exit__)(None, None, None)


ME = "{ me { name guest } }"
SEND = """mutation($room: String!, $body: String!, $id: UUID!) {
  sendMessage(room: $room, body: $body, clientId: $id) { room seq clientId } }"""


# --- HTTP ------------------------------------------------------------------------


async def test_the_schema_is_open_and_the_rest_needs_credentials(gql, make_user):
    nobody = await gql()
    schema = await nobody("{ __schema { queryType { name } } }")
    assert schema["data"]["__schema"]["queryType"]["name"] == "Query"
    assert code(await nobody(ME)) == "unauthorized"
    ada = await gql(await database_sync_to_async(make_user)("ada"))
    assert (await ada(ME))["data"]["me"] == {"name": "ada", "guest": False}


async def test_graphiql_is_served_on_get_with_its_files_here(settings):
    settings.DEBUG = False
    client = Gql()
    page = await client.http.get("/graphql/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "/static/vendor/graphiql/graphiql.min.js" in page.text
    assert "unpkg.com" not in page.text and "cdn" not in page.text
    await client.http.aclose()


async def test_send_message_is_idempotent_by_client_id(gql, make_user):
    ada = await database_sync_to_async(make_user)("ada")
    await database_sync_to_async(room_make)(slug="hall", creator=ada)
    client, client_id = await gql(ada), str(uuid.uuid4())
    first = await client(SEND, room="hall", body="hello", id=client_id)
    again = await client(SEND, room="hall", body="hello", id=client_id)
    assert code(first) == "ok"
    assert first["data"]["sendMessage"] == again["data"]["sendMessage"]
    assert first["data"]["sendMessage"]["seq"] == 1
    assert await Message.objects.filter(room__slug="hall").acount() == 1


async def test_a_private_room_answers_as_a_missing_one(gql, make_user):
    owner, other = await database_sync_to_async(lambda: (make_user("owner"), make_user("eve")))()
    await database_sync_to_async(room_make)(slug="den", creator=owner, private=True)
    eve = await gql(other)
    for query in ("{ room(slug: $s) { slug } }", "{ messages(room: $s) { edges { cursor } } }"):
        source = "query($s: String!) " + query
        hidden, missing = await eve(source, s="den"), await eve(source, s="nowhere")
        assert code(hidden) == "not_found"
        assert hidden["errors"][0]["message"].replace("den", "X") == missing["errors"][0][
            "message"
        ].replace("nowhere", "X")


async def test_refusals_carry_the_protocol_codes(gql, make_user, settings):
    settings.CHAT_SEND_BURST = 1
    owner, member = await database_sync_to_async(lambda: (make_user("own"), make_user("mem")))()
    room = await database_sync_to_async(room_make)(slug="hall", creator=owner)
    await database_sync_to_async(member_make)(room=room, user=member)
    client = await gql(member)
    too_long = await client(SEND, room="hall", body="x" * 5000, id=str(uuid.uuid4()))
    assert code(too_long) == "too_large"
    assert "body" in too_long["errors"][0]["message"]
    invite = await client('mutation { inviteMember(room: "hall", username: "own") }')
    assert code(invite) == "forbidden"
    assert code(await client(SEND, room="hall", body="one", id=str(uuid.uuid4()))) == "ok"
    limited = await client(SEND, room="hall", body="two", id=str(uuid.uuid4()))
    assert code(limited) == "rate_limited"
    assert limited["errors"][0]["extensions"]["retryAfter"] > 0
    assert "Traceback" not in json.dumps(limited)


async def test_csrf_holds_for_cookie_posts(make_user):
    from django.test import AsyncClient

    ada = await database_sync_to_async(make_user)("ada")
    browser = AsyncClient(enforce_csrf_checks=True)
    await browser.aforce_login(ada)
    refused = await browser.post("/graphql/", {"query": ME}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "forbidden"
    page = await browser.get("/graphql/", headers={"Accept": "text/html"})
    token = page.cookies["csrftoken"].value
    allowed = await browser.post(
        "/graphql/", {"query": ME}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert allowed.json()["data"]["me"]["name"] == "ada"


HOSTILE = {
    "500 levels": "{ me " + "{ name " * 500 + "}" * 500 + "}",
    "10,000 aliases": "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(10_000)) + " }",
    "fragments that loop": "{ rooms { ...a } } fragment a on Room { slug ...b } "
    "fragment b on Room { title ...a }",
    "a page of 1,000": '{ messages(room: "hall", first: 1000) { edges { cursor } } }',
    "not GraphQL": "{ me { name ",
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_documents_are_refused_before_the_database(name):
    client = Gql()
    body, queries = await queries_during(client(HOSTILE[name]))
    assert code(body) == "bad_request", body
    assert queries == 0
    health = await client.http.get("/healthz")
    assert health.status_code == 200
    await client.http.aclose()


async def test_huge_variables_are_refused(gql, make_user):
    client = await gql(await database_sync_to_async(make_user)("ada"))
    response = await client.http.post(
        "/graphql/",
        json={"query": ME, "variables": {"pad": "x" * 3_000_000}},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "too_large"


PAGE = """query($room: String!, $n: Int!) { messages(room: $room, first: $n, after: "20") {
  edges { cursor node { seq body author { name guest } quote { seq body author { name } }
          reactions { emoji count users } preview { url } attachment { name } mentions } }
  pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } }"""


async def test_a_page_costs_the_same_queries_from_10_to_50_messages(gql, make_user, settings):
    settings.CHAT_SEND_BURST = 1000
    ada = await database_sync_to_async(make_user)("ada")
    await database_sync_to_async(room_make)(slug="hall", creator=ada)
    actor = Actor(name="ada", user=ada)
    for i in range(60):
        reply = i if i % 3 == 0 and i > 0 else None
        await message_send(
            actor=actor, slug="hall", body=f"m{i} @ada", client_id=uuid.uuid4(), reply_to=reply
        )
    for seq in range(1, 60, 4):
        await reaction_set(
            actor=actor, slug="hall", seq=seq, emoji="👍", on=True, client_id=uuid.uuid4()
        )
    client = await gql(ada)
    counts = {}
    for n in (10, 50):
        body, counts[n] = await queries_during(client(PAGE, room="hall", n=n))
        assert code(body) == "ok", body
        edges = body["data"]["messages"]["edges"]
        assert len(edges) == n
        assert any(e["node"]["quote"] for e in edges) and any(e["node"]["reactions"] for e in edges)
        assert body["data"]["messages"]["pageInfo"]["hasPreviousPage"] is True
    assert counts[10] == counts[50]


# --- The access matrix, against REST's answers -------------------------------------

ACTORS = ["anonymous", "non-member", "member", "owner", "banned", "muted", "blocked",
          "deactivated", "revoked"]  # fmt: skip
ROOMS = ["hall", "den", "dm", "nowhere"]  # public, private, a DM, missing
# (REST method, path, body) beside the GraphQL document doing the same.
OPERATIONS = {
    "read": (("GET", "/rooms/{s}", None), "query($s: String!) { room(slug: $s) { slug } }"),
    "history": (
        ("GET", "/rooms/{s}/messages", None),
        "query($s: String!) { messages(room: $s) { edges { cursor } } }",
    ),
    "members": (
        ("GET", "/rooms/{s}/members", None),
        "query($s: String!) { room(slug: $s) { members { username } } }",
    ),
    "send": (
        ("POST", "/rooms/{s}/messages", "send"),
        'mutation($s: String!, $id: UUID!) { sendMessage(room: $s, body: "hi", clientId: $id)'
        " { seq } }",
    ),
    "read marker": (
        ("PUT", "/rooms/{s}/read", {"seq": 0}),
        "mutation($s: String!) { markRead(room: $s, seq: 0) }",
    ),
    "invite": (
        ("PUT", "/rooms/{s}/members/newcomer", None),
        'mutation($s: String!) { inviteMember(room: $s, username: "newcomer") }',
    ),
    "moderate": (
        ("POST", "/rooms/{s}/moderation", {"action": "unmute", "user": "bystander"}),
        'mutation($s: String!) { moderate(room: $s, action: UNMUTE, user: "bystander")'
        " { action } }",
    ),
}


@pytest.fixture
async def world(make_user, settings):
    """Each actor, the rooms, and the tokens each actor's requests carry."""
    # Each cell is asked twice (REST, then GraphQL): the send rate is not what is tested.
    settings.CHAT_SEND_BURST = 1000

    def setup() -> tuple[dict, str]:
        users = {name: make_user(name) for name in ACTORS if name != "anonymous"}
        for name in ("newcomer", "bystander", "peer"):
            users[name] = make_user(name)
        owner = users["owner"]
        hall = room_make(slug="hall", creator=owner)
        den = room_make(slug="den", creator=owner, private=True)
        for name in ("member", "banned", "muted", "bystander", "deactivated", "revoked"):
            member_make(room=den, user=users[name])
        for name in ("member", "banned", "muted", "bystander"):
            member_make(room=hall, user=users[name])
        return users, hall.slug

    users, _ = await database_sync_to_async(setup)()
    owner = Actor(name="owner", user=users["owner"])
    for slug in ("hall", "den"):
        for action, target in (("ban", "banned"), ("mute", "muted")):
            moderation = protocol.Moderation(action=action, user=target)
            await room_moderate(slug=slug, actor=owner, moderation=moderation)
    member = Actor(name="member", user=users["member"])
    dm = (
        await dm_send(
            actor=member, usernames=["blocked", "peer"], body="hi", client_id=uuid.uuid4()
        )
    ).room
    await block_set(actor=Actor(name="peer", user=users["peer"]), username="blocked", on=True)
    tokens = {name: (await token_create(user=user)).token for name, user in users.items()}
    revoked = await database_sync_to_async(lambda: users["revoked"].api_tokens.get())()
    await token_revoke(user=users["revoked"], token_id=revoked.pk)
    users["deactivated"].is_active = False
    await database_sync_to_async(users["deactivated"].save)()
    return tokens, dm


async def _rest(http: httpx.AsyncClient, method: str, path: str, body: Any) -> str:
    if body == "send":
        body = {"body": "hi", "client_id": str(uuid.uuid4())}
    response = await http.request(method, "/api/v1" + path, json=body)
    return "ok" if response.status_code < 300 else response.json()["code"]


@pytest.mark.parametrize("actor", ACTORS)
async def test_graphql_answers_as_rest_does(world, actor):
    tokens, dm = world
    client = Gql(tokens.get(actor))
    differ = []
    for room in ROOMS:
        slug = dm if room == "dm" else room
        for name, ((method, path, body), document) in OPERATIONS.items():
            rest = await _rest(client.http, method, path.format(s=slug), body)
            graphql = code(await client(document, s=slug, id=str(uuid.uuid4())))
            if rest != graphql:
                differ.append((room, name, rest, graphql))
    await client.http.aclose()
    assert not differ, f"{actor}: (room, operation, REST, GraphQL) {differ}"


async def _socket_join(path: str, token: str | None, slug: str) -> str:
    """The native socket's answer to a join of the room, as "ok" or a code."""
    from chatsite.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    communicator = WebsocketCommunicator(
        application, path, headers=headers, subprotocols=[SUBPROTOCOL]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    if not connected:  # the handshake refused: a bad or revoked token
        return "unauthorized"
    try:
        if path == "/ws/chat/":
            hello = json.loads(await communicator.receive_from(TIMEOUT))
            if hello["type"] == "error":
                return hello["code"]
            await communicator.send_to(json.dumps({"type": "join", "room": slug}))
            answer = json.loads(await communicator.receive_from(TIMEOUT))
            return "ok" if answer["type"] == "joined" else answer["code"]
        await communicator.send_to(json.dumps({"type": "connection_init"}))
        ack = await communicator.receive_output(TIMEOUT)
        if ack["type"] == "websocket.close":
            return {4401: "unauthorized", 4403: "unauthorized"}.get(ack["code"], str(ack["code"]))
        query = "subscription($s: String!) { roomEvents(room: $s) { __typename } }"
        subscribe = {"id": "1", "type": "subscribe",
                     "payload": {"query": query, "variables": {"s": slug}}}  # fmt: skip
        await communicator.send_to(json.dumps(subscribe))
        answer = json.loads(await communicator.receive_from(TIMEOUT))
        if answer["type"] == "error":
            return answer["payload"][0]["extensions"]["code"]
        assert answer["payload"]["data"]["roomEvents"]["__typename"] == "Presence", answer
        return "ok"
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize("actor", ACTORS)
async def test_subscriptions_answer_as_the_socket_does(world, actor, settings):
    settings.CHAT_ALLOW_GUESTS = False  # an actor without credentials is refused on both
    tokens, dm = world
    differ = []
    for room in ROOMS:
        slug = dm if room == "dm" else room
        native = await _socket_join("/ws/chat/", tokens.get(actor), slug)
        graphql = await _socket_join("/graphql/", tokens.get(actor), slug)
        if native != graphql:
            differ.append((room, native, graphql))
    assert not differ, f"{actor}: (room, socket, GraphQL) {differ}"


# --- Subscriptions over real servers ------------------------------------------------


class GqlSocket:
    """A graphql-transport-ws client on a real server."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, payload: dict | None = None, **kw: Any) -> "GqlSocket":
        ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=TIMEOUT, **kw)
        socket = cls(ws)
        await socket.send({"type": "connection_init", "payload": payload or {}})
        ack = await socket.recv()
        assert ack["type"] == "connection_ack", ack
        return socket

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self) -> dict:
        async with asyncio.timeout(TIMEOUT):
            return json.loads(await self.ws.recv())

    async def subscribe(self, id_: str, query: str, **variables: Any) -> None:
        payload = {"query": query, "variables": variables}
        await self.send({"id": id_, "type": "subscribe", "payload": payload})

    async def event(self, id_: str) -> dict:
        """The next `next` of subscription id_'s data (skipping others'), or its error."""
        while True:
            message = await self.recv()
            if message.get("id") == id_ and message["type"] in ("next", "error", "complete"):
                return message


EVENTS = """subscription($room: String!, $since: Int) {
  roomEvents(room: $room, since: $since) {
    __typename ... on Message { seq body kind author { name } } ... on Presence { count } } }"""


async def messages_of(socket: GqlSocket, id_: str, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        message = await socket.event(id_)
        assert message["type"] == "next", message
        event = message["payload"]["data"]["roomEvents"]
        if event["__typename"] == "Message":
            seqs.append(event["seq"])
    return seqs


async def joined(socket: GqlSocket, id_: str) -> None:
    """Wait for the subscription's first Presence: the room is joined."""
    while True:
        message = await socket.event(id_)
        assert message["type"] == "next", message
        if message["payload"]["data"]["roomEvents"]["__typename"] == "Presence":
            return


async def sent(sender: WsClient, body: str) -> int:
    """Send to the lobby; the ack's seq (its own copy may come before it)."""
    client_id = str(uuid.uuid4())
    await sender.send({"type": "send", "room": "lobby", "body": body, "client_id": client_id})
    while True:
        frame = await sender.recv()
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return frame["seq"]


@pytest.fixture
def two_servers(start_server, make_user):
    room_make(slug="lobby", creator=make_user("owner"))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    fast = {"CHAT_SWEEP_SECONDS": "0.5", "CHAT_SEND_BURST": "100000",
            "CHAT_SEND_PER_MINUTE": "6000000"}  # fmt: skip
    return [
        start_server(redis_url=REDIS_URL, CHANNEL_LAYER_PREFIX=prefix, **fast) for _ in range(2)
    ]


def gql_url(server: Any, name: str) -> str:
    return f"ws://127.0.0.1:{server.port}/graphql/?name={name}"


@pytest.mark.redis
async def test_a_subscriber_gets_a_native_senders_messages_from_another_process(two_servers):
    a, b = two_servers
    subscriber = await GqlSocket.open(gql_url(a, "sub"))
    await subscriber.subscribe("s", EVENTS, room="lobby")
    await joined(subscriber, "s")
    sender = await WsClient.open(f"{b.ws_url}?name=snd")
    await sender.send({"type": "join", "room": "lobby"})
    await sender.expect("joined")
    acked = [await sent(sender, f"m{i}") for i in range(30)]
    assert await messages_of(subscriber, "s", 30) == acked == list(range(1, 31))
    await sender.close()
    await subscriber.ws.close()


@pytest.mark.redis
async def test_graphql_sends_reach_a_native_socket_on_another_process(two_servers):
    a, b = two_servers
    reader = await WsClient.open(f"{a.ws_url}?name=reader")
    await reader.send({"type": "join", "room": "lobby"})
    await reader.expect("joined")
    writer = await GqlSocket.open(gql_url(b, "writer"))
    acked = []
    for i in range(20):
        await writer.subscribe(f"m{i}", SEND, room="lobby", body=f"m{i}", id=str(uuid.uuid4()))
        answer = await writer.event(f"m{i}")
        acked.append(answer["payload"]["data"]["sendMessage"]["seq"])
        assert (await writer.event(f"m{i}"))["type"] == "complete"
    got = []
    while len(got) < 20:
        frame = await reader.recv()
        if frame["type"] == "message":
            got.append(frame["seq"])
    assert sorted(got) == acked == list(range(1, 21))
    await reader.close()
    await writer.ws.close()


@pytest.mark.redis
async def test_a_subscription_resumed_with_since_after_its_socket_died_misses_nothing(
    two_servers,
):
    a, b = two_servers
    sender = await WsClient.open(f"{b.ws_url}?name=snd")
    await sender.send({"type": "join", "room": "lobby"})
    await sender.expect("joined")

    async def send(n: int) -> list[int]:
        return [await sent(sender, f"m{i}") for i in range(n)]

    first = await GqlSocket.open(gql_url(a, "sub"))
    await first.subscribe("s", EVENTS, room="lobby")
    await joined(first, "s")
    early = await send(10)
    seen = await messages_of(first, "s", 10)
    first.ws.transport.abort()  # killed: no close handshake
    missed = await send(150)  # more than one page of catch-up
    second = await GqlSocket.open(gql_url(b, "sub"))
    await second.subscribe("s", EVENTS, room="lobby", since=seen[-1])
    caught_up = await messages_of(second, "s", 150)
    live = await send(5)
    after = await messages_of(second, "s", 5)
    assert seen == early
    assert caught_up == missed
    assert after == live
    assert seen + caught_up + after == list(range(1, 166))
    await sender.close()
    await second.ws.close()


@pytest.mark.redis
async def test_the_socket_holds_the_protocol_and_survives_hostile_documents(two_servers, make_user):
    a, _ = two_servers
    url = gql_url(a, "x")
    # No subprotocol: closed with 4406.
    async with websockets.connect(url, open_timeout=TIMEOUT) as plain:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(plain.recv(), TIMEOUT)
        assert closed.value.rcvd.code == 4406
    # A bad token in connection_init: 4403.
    ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=TIMEOUT)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "nope"}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert closed.value.rcvd.code == 4403
    # A good one: the socket is the token's user.
    ada = await database_sync_to_async(make_user)("ada")
    token = (await token_create(user=ada)).token
    socket = await GqlSocket.open(url, payload={"token": token})
    await socket.subscribe("me", ME)
    assert (await socket.event("me"))["payload"]["data"]["me"]["name"] == "ada"
    # Hostile documents: an error each, and the socket answers on.
    for i, name in enumerate(["500 levels", "fragments that loop", "not GraphQL"]):
        await socket.subscribe(f"h{i}", HOSTILE[name])
        answer = await socket.event(f"h{i}")
        assert (
            answer["type"] == "error"
            and answer["payload"][0]["extensions"]["code"] == "bad_request"
        )
    # A flood of subscriptions: past the cap, refused one by one.
    refused = 0
    for i in range(60):
        await socket.subscribe(f"f{i}", EVENTS, room=f"room{i}")
        answer = await socket.event(f"f{i}")
        if answer["type"] == "error":
            refused += answer["payload"][0]["extensions"]["code"] in ("bad_request", "not_found")
    assert refused == 60  # the rooms do not exist; and past the cap, bad_request
    await socket.send({"type": "ping"})
    assert (await socket.recv())["type"] == "pong"
    with contextlib.suppress(Exception):
        await socket.ws.close()


async def test_my_events_streams_an_invitation(make_user):
    from chat.services.rooms import membership_invite
    from chatsite.asgi import application

    owner, ada = await database_sync_to_async(lambda: (make_user("own"), make_user("ada")))()
    await database_sync_to_async(room_make)(slug="den", creator=owner, private=True)
    token = (await token_create(user=ada)).token
    headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode())]
    socket = WebsocketCommunicator(application, "/graphql/", headers, subprotocols=[SUBPROTOCOL])
    assert (await socket.connect(timeout=TIMEOUT))[0]
    await socket.send_json_to({"type": "connection_init"})
    assert (await socket.receive_json_from(TIMEOUT))["type"] == "connection_ack"
    query = "subscription { myEvents { __typename ... on Added { room kind title } } }"
    await socket.send_json_to({"id": "me", "type": "subscribe", "payload": {"query": query}})
    # A query on the same socket answers once the subscription is in place.
    await socket.send_json_to({"id": "q", "type": "subscribe", "payload": {"query": ME}})
    answer = await socket.receive_json_from(TIMEOUT)
    assert answer["payload"]["data"]["me"]["name"] == "ada", answer
    assert (await socket.receive_json_from(TIMEOUT))["type"] == "complete"
    await membership_invite(slug="den", inviter=owner, username="ada")
    event = await socket.receive_json_from(TIMEOUT)
    assert event["id"] == "me"
    assert event["payload"]["data"]["myEvents"] == {
        "__typename": "Added", "room": "den", "kind": "ROOM", "title": "den"
    }  # fmt: skip
    await socket.disconnect()

"""Real daphne processes, real `websockets` clients, over TCP."""

import json
import urllib.request
import uuid

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from chat.models import Message
from tests.conftest import WsClient
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lobby(make_user):
    return room_make(slug="lobby", creator=make_user("owner"))


async def say(client, body):
    client_id = str(uuid.uuid4())
    await client.send({"type": "send", "room": "lobby", "body": body, "client_id": client_id})
    return client_id


async def next_of(client, type_, **fields):
    """The next frame of this type whose fields match, skipping others."""
    while True:
        frame = await client.recv()
        if frame["type"] == type_ and all(frame.get(k) == v for k, v in fields.items()):
            return frame


async def test_two_clients_chat_and_a_rejoin_with_since_gets_exactly_what_was_missed(
    start_server, lobby
):
    server = start_server()
    ada = await WsClient.open(server.ws_url + "?name=ada")
    bo = await WsClient.open(server.ws_url + "?name=bo")
    await ada.send({"type": "join", "room": "lobby"})
    await ada.expect("joined")
    await bo.send({"type": "join", "room": "lobby"})
    await bo.expect("joined")

    await say(ada, "hi bo")
    assert (await next_of(bo, "message"))["body"] == "hi bo"
    await say(bo, "hi ada")
    reply = await next_of(ada, "message", body="hi ada")
    assert (reply["body"], reply["author"]) == ("hi ada", {"name": "bo", "guest": True})
    last_seen = reply["seq"]
    await bo.close()

    missed = [f"while you were away {i}" for i in range(3)]
    for body in missed:
        await say(ada, body)
        await next_of(ada, "ack")

    bo = await WsClient.open(server.ws_url + "?name=bo")
    await bo.send({"type": "join", "room": "lobby", "since": last_seen})
    joined = await bo.expect("joined")
    assert [m["body"] for m in joined["messages"]] == missed
    assert [m["seq"] for m in joined["messages"]] == [last_seen + 1, last_seen + 2, last_seen + 3]
    assert joined["complete"] is True
    await say(ada, "welcome back")
    assert (await bo.expect("message"))["seq"] == last_seen + 4
    await ada.close()
    await bo.close()


async def test_the_server_refuses_frames_over_64_kib(start_server, lobby):
    server = start_server()
    client = await WsClient.open(server.ws_url + "?name=ada", max_size=None)
    await client.ws.send("x" * (64 * 1024 + 1))
    # Autobahn fails such a connection by dropping it, before the app sees the frame.
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert not await Message.objects.aexists()
    survivor = await WsClient.open(server.ws_url + "?name=bo")
    await survivor.send({"type": "ping"})
    assert (await survivor.expect("pong"))["type"] == "pong"
    await survivor.close()


async def test_a_room_in_the_url_is_joined_for_simple_clients(start_server, lobby):
    server = start_server()
    async with websockets.connect(server.ws_url + "lobby/?name=ada") as ws:
        client = WsClient(ws)
        await client.expect("hello")
        assert (await client.expect("joined"))["room"] == "lobby"


def test_make_run_serves_the_page_and_its_modules(start_server, lobby):
    server = start_server(DEBUG="1")  # as `make run` does
    with urllib.request.urlopen(server.http_url + "/") as response:
        page = response.read().decode()
    assert 'type="module"' in page and "/static/chat/main.js" in page
    assert 'data-room="lobby"' in page
    with urllib.request.urlopen(server.http_url + "/static/chat/main.js") as response:
        assert response.status == 200
        assert 'from "./live.js"' in response.read().decode()  # the module, as written


async def test_a_real_server_closes_with_the_documented_codes(start_server):
    server = start_server()
    async with websockets.connect(server.ws_url + "?name=-bad") as ws:
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "bad_request")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4400


async def test_no_token_cookie_or_body_reaches_the_logs(start_server, lobby, make_user):
    import httpx

    from chat.services.tokens import token_create

    token = (await token_create(user=lobby.creator)).token
    server = start_server()  # the default LOG_LEVEL, INFO
    headers = {"Authorization": f"Bearer {token}"}
    secret_body = f"confidential-{uuid.uuid4()}"
    client = await WsClient.open(server.ws_url, additional_headers=headers)
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("joined")
    await say(client, secret_body)
    await next_of(client, "ack")
    await client.send({"type": "send", "room": "nope!", "body": secret_body, "client_id": "x"})
    await next_of(client, "error")
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers) as http:
        body = {"body": secret_body + "-http", "client_id": str(uuid.uuid4())}
        assert (await http.post("/api/v1/rooms/lobby/messages", json=body)).status_code == 201
        await http.post("/api/v1/rooms/lobby/messages", json={"body": secret_body})  # invalid
        cookie = {"sessionid": "s3ss10n-" + uuid.uuid4().hex, "csrftoken": uuid.uuid4().hex}
        await http.get("/", headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookie.items())})
    await client.close()
    server.stop()
    log = server.log_path.read_text()
    assert "POST /api/v1/rooms/lobby/messages" in log  # the log is there, and has requests
    for secret in (token, secret_body, cookie["sessionid"], cookie["csrftoken"]):
        assert secret not in log

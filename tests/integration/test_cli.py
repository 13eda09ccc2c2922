"""`chat-client`, the console script, as a subprocess against a real daphne."""

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from chat.actor import Actor
from chat.models import Message
from chat.services.stream import message_store
from chat.services.tokens import token_create
from tests.conftest import ROOT, TIMEOUT, WsClient, check_server_frame
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)
CHAT_CLIENT = Path(sys.executable).parent / "chat-client"


class Cli:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> "Cli":
        proc = await asyncio.create_subprocess_exec(
            CHAT_CLIENT, *args, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def line(self, timeout: float = TIMEOUT) -> str:
        async with asyncio.timeout(timeout):
            raw = await self.proc.stdout.readline()
        assert raw, f"chat-client exited ({await self.proc.wait()}) after {self.lines}"
        self.lines.append(raw.decode().rstrip("\n"))
        return self.lines[-1]

    async def until(self, text: str, timeout: float = TIMEOUT) -> None:
        while not (await self.line(timeout)).endswith(text):
            pass

    async def type(self, text: str) -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self) -> int:
        """Close stdin: the client waits for its acks, then exits."""
        self.proc.stdin.close()
        async with asyncio.timeout(TIMEOUT * 3):
            rest = (await self.proc.stdout.read()).decode().splitlines()
            self.lines += rest
            return await self.proc.wait()


def bodies(lines: list[str]) -> list[str]:
    """`[12:00:01] ada: hi` -> `ada: hi`."""
    return [line.split("] ", 1)[1] for line in lines]


@pytest.fixture
def lobby(make_user):
    owner = make_user("owner")
    room = room_make(slug="lobby", creator=owner)
    for i in range(3):
        message_store(
            room_id=room.pk, actor=Actor(name="owner", user=owner), body=f"old {i}",
            client_id=uuid.uuid4(),
        )  # fmt: skip
    return room, owner


async def test_it_prints_history_then_live_sends_lines_and_survives_a_restart(start_server, lobby):
    room, owner = lobby
    server = start_server()
    token = (await token_create(user=owner)).token
    cli = await Cli.start(server.ws_url, "--room", "lobby", "--token", token)
    await cli.until("owner: old 2")

    bot = await WsClient.open(server.ws_url + "?name=bot")
    await bot.send({"type": "join", "room": "lobby"})
    await bot.expect("joined")
    await cli.type("hello from the terminal")
    heard = await bot.expect("message")
    assert (heard["body"], heard["author"]["name"]) == ("hello from the terminal", "owner")
    await bot.send(
        {"type": "send", "room": "lobby", "body": "hi cli", "client_id": str(uuid.uuid4())}
    )
    await cli.until("bot (guest): hi cli")
    await bot.close()

    server.stop()
    # While the server is down: a line is typed (held until acked), and a
    # message is stored by someone else (recovered with `since` on rejoin).
    await cli.type("typed while down")
    await database_sync_to_async(message_store)(
        room_id=room.pk, actor=Actor(name="bot"), body="stored while down", client_id=uuid.uuid4()
    )
    server.start()
    await cli.until("owner: typed while down", timeout=30)
    assert await cli.finish() == 0

    assert bodies(cli.lines) == [
        "owner: old 0", "owner: old 1", "owner: old 2",
        "owner: hello from the terminal", "bot (guest): hi cli",
        "bot (guest): stored while down", "owner: typed while down",
    ]  # fmt: skip
    stored = [m.body async for m in Message.objects.order_by("seq")]
    assert stored.count("typed while down") == 1 and len(stored) == 7


async def test_json_mode_prints_raw_frames_that_match_the_spec(start_server, lobby):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--room", "lobby", "--guest", "scripter", "--json")
    await cli.type("one line")
    assert await cli.finish() == 0
    frames = [json.loads(line) for line in cli.lines]
    for frame in frames:
        check_server_frame(frame)
    types = [frame["type"] for frame in frames]
    assert types[:2] == ["hello", "joined"] and "ack" in types
    assert [f["body"] for f in frames if f["type"] == "message"] == ["one line"]


async def test_a_refused_token_exits_with_an_error(start_server):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--token", "chat_wrong")
    assert await cli.finish() == 1

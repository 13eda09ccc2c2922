"""`chat-client`, the console script, as a subprocess against a real daphne."""

import asyncio
import json
import signal
import sys
import uuid
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from chat.actor import Actor
from chat.models import Message
from chat.services.stream import message_store
from chat.services.tokens import token_create
from chat_client.cli import main as cli_main
from tests.conftest import ROOT, TIMEOUT, WsClient, check_server_frame, free_port
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)
CHAT_CLIENT = Path(sys.executable).parent / "chat-client"


class Cli:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []  # stderr, once it has exited

    @classmethod
    async def start(cls, *args: str) -> "Cli":
        proc = await asyncio.create_subprocess_exec(
            CHAT_CLIENT, *args, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
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

    async def finish(self, timeout: float = TIMEOUT * 3) -> int:
        """Close stdin: the client waits for its acks, then exits."""
        self.proc.stdin.close()
        async with asyncio.timeout(timeout):
            out, err = await self.proc.communicate()
        self.lines += out.decode().splitlines()
        self.errors = err.decode().splitlines()
        return self.proc.returncode


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


async def test_a_refused_token_exits_3_saying_so(start_server):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--token", "chat_wrong")
    assert await cli.finish() == 3
    assert "the server refused the token (wrong, revoked or expired)" in cli.errors[-1]
    assert "Settings, API tokens" in cli.errors[-1], cli.errors


async def test_piped_lines_are_stored_in_input_order_waiting_when_told(start_server, lobby):
    # A burst of 5 and 20 sends a second for this address: 130 lines take
    # over 6 s, longer than --timeout, which each ack starts again.
    server = start_server(CHAT_IP_SEND_BURST="5", CHAT_IP_SEND_PER_MINUTE="1200")
    cli = await Cli.start(server.ws_url, "--guest", "piper", "--timeout", "3")
    sent = [f"line {i}" for i in range(1, 131)]
    cli.proc.stdin.write("".join(f"{line}\n" for line in sent).encode())
    assert await cli.finish() == 0, cli.errors
    stored = [m.body async for m in Message.objects.filter(author_name="piper").order_by("seq")]
    assert stored == sent
    assert bodies(cli.lines)[3:] == [f"piper (guest): {line}" for line in sent], "each shown once"
    waits = [line for line in cli.errors if "rate limited: waiting" in line]
    assert waits, "it was told to wait, and said so"
    assert len(waits) <= len(sent) and len(cli.errors) == 1 + len(waits), cli.errors[:5]


async def test_refused_lines_exit_1_each_named_and_an_oversized_one_is_not_sent(
    start_server, lobby
):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--guest", "piper")
    for line in ("first", "x" * 10_000, "y" * 70_000, "last"):
        await cli.type(line)
    assert await cli.finish() == 1
    assert cli.errors[0] == "connected as piper", "one connection: nothing made it reconnect"
    assert cli.errors[1:] == [
        "chat-client: line 2 not sent: too_large: the message is 10,000 characters;"
        " this server takes at most 4,000",
        "chat-client: line 3 not sent: too_large: the message is 70,000 characters;"
        " this server takes at most 4,000",
    ]
    stored = [m.body async for m in Message.objects.filter(author_name="piper").order_by("seq")]
    assert stored == ["first", "last"]


async def test_with_no_server_it_says_why_within_seconds(tmp_path):
    port = free_port()  # nothing listens on it
    loop = asyncio.get_running_loop()
    began = loop.time()
    cli = await Cli.start(f"ws://127.0.0.1:{port}/ws/chat/", "--guest", "piper")
    await cli.type("hello?")
    assert await cli.finish(timeout=10) == 3
    assert loop.time() - began < 5
    assert cli.errors == [
        f"chat-client: cannot connect to ws://127.0.0.1:{port}/ws/chat/: connection refused"
    ]


async def test_a_refused_guest_name_exits_3_naming_the_rule(start_server):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--guest", "bad name!")
    await cli.type("hello")
    assert await cli.finish() == 3
    assert "guest name not allowed: use 1-32 of A-Z" in cli.errors[-1], cli.errors


async def test_a_server_that_stops_answering_is_given_up_on_after_the_timeout(start_server, lobby):
    server = start_server()
    cli = await Cli.start(server.ws_url, "--guest", "piper", "--timeout", "2")
    await cli.until("owner: old 2")  # joined
    server.proc.send_signal(signal.SIGSTOP)
    try:
        await cli.type("into the void")
        assert await cli.finish(timeout=10) == 4
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert cli.errors[-1] == "chat-client: gave up: no answer for 2 s (1 line(s) not acknowledged)"


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    usage = capsys.readouterr().out
    for status in ("0  every line", "1  a line was refused", "3  no connection", "4  the server"):
        assert status in usage

"""`chat-client`: chat from a terminal or a script, on the reference client.

    chat-client ws://127.0.0.1:8000/ws/chat/ --room lobby [--token T | --guest NAME] [--json]

It prints the room's recent history, then live messages, each once and in seq
order, across reconnects (chat_client/client.py does the recovery). Each line read
from stdin is sent as a message, in input order, resent until acknowledged:
when the server says to wait (`rate_limited`, `overloaded`) it says so once
and waits. At the end of stdin it waits until it has joined and its messages
are acknowledged and shown, then exits: `chat-client ... < lines.txt` works in
scripts.
"""

import argparse
import asyncio
import json
import locale
import os
import sys
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from chat_client.client import ChatClient

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_CONNECTION, EXIT_TIMEOUT = 0, 1, 2, 3, 4
EXIT_STATUS = """exit status:
  0  every line was sent and acknowledged
  1  a line was refused (too long, say): each is named on stderr, the rest were sent
  2  bad arguments
  3  no connection: the server could not be reached, or refused the token,
     the guest name or the room (the reason is on stderr)
  4  the server stopped answering for --timeout seconds
"""
CONNECT_ATTEMPTS = 3  # tries before the first connection; later, it reconnects until --timeout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="the socket URL, e.g. ws://127.0.0.1:8000/ws/chat/")
    parser.add_argument("--room", default="lobby", help="the room to join (default: lobby)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=os.environ.get("CHAT_TOKEN"),
        help="an API token (default: $CHAT_TOKEN); sent as Authorization: Bearer",
    )
    auth.add_argument(
        "--guest",
        metavar="NAME",
        help="enter as a guest with this name; with neither --token nor --guest, the client"
        " enters as a guest with a name the server picks (guest-xxxxxx), where guests are allowed",
    )
    parser.add_argument("--json", action="store_true", help="print every frame as raw JSON")
    parser.add_argument(
        "--iso",
        action="store_true",
        help="print times as ISO 8601 (2026-12-07T15:04:05+01:00) instead of the locale's format",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="give up (exit 4) when the server has not answered for this long while"
        " a line waits for its ack, or the room for its join; each answer starts it"
        " again, and so does a wait the server asked for (default: 30)",
    )
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def format_message(message: dict[str, Any], *, iso: bool = False) -> str | None:
    """One stream entry as a line: `[12:04:05] ada: hello`, the time in the
    locale's format (ISO 8601 with `iso`); None for a deleted message, which
    its `deleted` entry tells."""
    created = datetime.fromisoformat(message["created"]).astimezone()
    when = created.isoformat(timespec="seconds") if iso else created.strftime("%X")
    who = message["author"]["name"] + (" (guest)" if message["author"]["guest"] else "")
    kind, target = message["kind"], message["target"]
    if kind == "edit":
        return f"[{when}] {who} edited #{target}: {message['body']}"
    if kind == "delete":
        return f"[{when}] {who} deleted #{target}"
    if kind in ("react", "unreact"):
        verb = "reacted" if kind == "react" else "took back"
        return f"[{when}] {who} {verb} {message['body']} on #{target}"
    if kind == "preview":
        return f"[{when}] #{target} links to: {message['preview']['title']}"
    if message["deleted"]:
        return None
    reply = f"(re #{message['reply_to']}) " if message["reply_to"] else ""
    attachment = message["attachment"]
    file = f" [{attachment['name']}: {attachment['url']}]" if attachment else ""
    return f"[{when}] {who}: {reply}{message['body']}{file}"


def _show(message: dict[str, Any], *, iso: bool) -> None:
    if (line := format_message(message, iso=iso)) is not None:
        _print(line)


def _print(line: str, stream: Any = sys.stdout) -> None:
    print(line, file=stream, flush=True)


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of stdin on a queue, then None at its end. A daemon thread reads,
    so a blocked read never keeps the process from exiting."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, daemon=True, name="stdin").start()
    return queue


async def run(args: argparse.Namespace) -> int:
    url, headers = args.url, {}
    if args.guest:
        url += ("&" if "?" in url else "?") + urlencode({"name": args.guest})
    elif args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    line_of: dict[str, int] = {}  # client_id -> its line number on stdin

    def on_frame(frame: dict[str, Any]) -> None:
        if args.json:
            _print(json.dumps(frame, ensure_ascii=False))
        elif frame["type"] == "hello":
            _print(f"connected as {frame['user']['name']}", sys.stderr)
        elif frame["type"] == "error" and not _reported(frame):
            _print(f"error: {frame['code']}: {frame['detail']}", sys.stderr)

    def _reported(error: dict[str, Any]) -> bool:  # by on_refused, on_wait or the failure
        return error["ref"] in line_of or error["ref"] in (None, "join")

    def on_refused(frame: dict[str, Any], error: dict[str, Any]) -> None:
        line = line_of[frame["client_id"]]
        _print(f"chat-client: line {line} not sent: {error['code']}: {error['detail']}", sys.stderr)

    def on_wait(error: dict[str, Any]) -> None:
        waiting = f"{error['code'].replace('_', ' ')}: waiting {client.held_for():.1f} s"
        sent = f"{len(client.acked)} sent, {len(client.outbox)} to go"
        _print(f"chat-client: {waiting} ({sent})", sys.stderr)

    client = ChatClient(
        url,
        rooms=[args.room],
        headers=headers,
        on_frame=on_frame,
        on_message=None if args.json else lambda message: _show(message, iso=args.iso),
        on_refused=on_refused,
        on_wait=on_wait,
        connect_attempts=CONNECT_ATTEMPTS,
    )
    connection = asyncio.create_task(client.run())
    stalled = asyncio.create_task(_stalled(client, args.timeout))
    ended = {connection, stalled}
    lines = _stdin_lines(asyncio.get_running_loop())
    number = 0
    while (line := await _next_line(lines, ended)) is not None:
        number += 1
        if line.strip():
            line_of[await client.send(args.room, line)] = number

    def settled_now() -> bool:  # joined, every line answered, and each acked one shown
        held = client.messages[args.room]
        return (
            client.joined.is_set()
            and not client.outbox
            and set(client.acked.values()) <= held.keys()
        )

    settled = asyncio.create_task(client.wait_for(settled_now, None))
    await asyncio.wait({settled, *ended}, return_when=asyncio.FIRST_COMPLETED)
    ok, gave_up = settled.done(), stalled.done()
    for task in (settled, stalled):
        task.cancel()
    await client.stop(abort=gave_up)  # a server that stopped answering would not close
    await connection
    if client.failure:
        _print(f"chat-client: {client.failure}", sys.stderr)
        return EXIT_NO_CONNECTION
    if not ok:
        unsent = f"{len(client.outbox)} line(s) not acknowledged"
        _print(f"chat-client: gave up: no answer for {args.timeout:g} s ({unsent})", sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_REFUSED if client.refused else EXIT_OK


async def _stalled(client: ChatClient, timeout: float) -> None:  # noqa: ASYNC109
    """Return once the client has waited `timeout` seconds, past any wait the
    server asked for, for an answer to a line or to its join."""

    def waiting() -> bool:
        return bool(client.outbox) or not client.joined.is_set()

    while True:
        await client.wait_for(waiting, None)
        answered = client.answers

        def progress(answered: int = answered) -> bool:
            return client.answers != answered or not waiting()

        try:
            await client.wait_for(progress, timeout + client.held_for())
        except TimeoutError:
            return


async def _next_line(lines: asyncio.Queue[str | None], ended: set[asyncio.Task]) -> str | None:
    """The next line of stdin, or None at its end or once a task in `ended` is done."""
    get = asyncio.ensure_future(lines.get())
    await asyncio.wait({get, *ended}, return_when=asyncio.FIRST_COMPLETED)
    if not get.done():
        get.cancel()
        return None
    return get.result()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    locale.setlocale(locale.LC_TIME, "")  # times as the user's locale writes them, as the page
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

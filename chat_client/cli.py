"""`chat-client`: chat from a terminal or a script, on the reference client.

    chat-client ws://127.0.0.1:8000/ws/chat/ --room lobby [--token T | --guest NAME] [--json]

It prints the room's recent history, then live messages, each once and in seq
order, across reconnects (chat_client/client.py does the recovery). Each line read
from stdin is sent as a message, resent until acknowledged. At the end of
stdin it waits until it has joined and its messages are acknowledged and
shown, then exits: `echo hi | chat-client ...` works in scripts.
"""

import argparse
import asyncio
import json
import os
import sys
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from chat_client.client import ChatClient

DRAIN_SECONDS = 30.0  # at the end of stdin, how long to wait for acks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat-client", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the socket URL, e.g. ws://127.0.0.1:8000/ws/chat/")
    parser.add_argument("--room", default="lobby", help="the room to join (default: lobby)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token",
        default=os.environ.get("CHAT_TOKEN"),
        help="an API token (default: $CHAT_TOKEN); sent as Authorization: Bearer",
    )
    auth.add_argument("--guest", metavar="NAME", help="enter as a guest with this name")
    parser.add_argument("--json", action="store_true", help="print every frame as raw JSON")
    return parser


def format_message(message: dict[str, Any]) -> str:
    """One stream entry as a line: `[12:04:05] ada: hello`."""
    when = datetime.fromisoformat(message["created"]).astimezone().strftime("%H:%M:%S")
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
    reply = f"(re #{message['reply_to']}) " if message["reply_to"] else ""
    attachment = message["attachment"]
    file = f" [{attachment['name']}: {attachment['url']}]" if attachment else ""
    return f"[{when}] {who}: {reply}{message['body']}{file}"


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


def _on_frame(frame: dict[str, Any], *, raw: bool) -> None:
    if raw:
        _print(json.dumps(frame, ensure_ascii=False))
    elif frame["type"] == "error":
        _print(f"error: {frame['code']}: {frame['detail']}", sys.stderr)
    elif frame["type"] == "hello":
        _print(f"connected as {frame['user']['name']}", sys.stderr)


async def run(args: argparse.Namespace) -> int:
    url, headers = args.url, {}
    if args.guest:
        url += ("&" if "?" in url else "?") + urlencode({"name": args.guest})
    elif args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    client = ChatClient(
        url,
        rooms=[args.room],
        headers=headers,
        on_frame=lambda frame: _on_frame(frame, raw=args.json),
        on_message=None if args.json else lambda message: _print(format_message(message)),
    )
    connection = asyncio.create_task(client.run())
    lines = _stdin_lines(asyncio.get_running_loop())
    while (line := await _next_line(lines, connection)) is not None:
        if line.strip():
            await client.send(args.room, line)

    def settled_now() -> bool:  # joined, every line acked, and each shown back in the room
        held = client.messages[args.room]
        return (
            client.joined.is_set()
            and not client.outbox
            and set(client.acked.values()) <= held.keys()
        )

    settled = asyncio.create_task(client.wait_for(settled_now, DRAIN_SECONDS))
    await asyncio.wait({settled, connection}, return_when=asyncio.FIRST_COMPLETED)
    ok = settled.done() and settled.exception() is None
    settled.cancel()
    await client.stop()
    await connection
    if client.failure:
        _print(f"chat-client: {client.failure}", sys.stderr)
    elif not ok:
        _print(
            f"chat-client: gave up after {DRAIN_SECONDS:.0f} s: not joined, or not acked",
            sys.stderr,
        )
    return 0 if ok else 1


async def _next_line(lines: asyncio.Queue[str | None], connection: asyncio.Task) -> str | None:
    """The next line of stdin, or None at its end or when the client has stopped."""
    get = asyncio.ensure_future(lines.get())
    await asyncio.wait({get, connection}, return_when=asyncio.FIRST_COMPLETED)
    if not get.done():
        get.cancel()
        return None
    return get.result()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

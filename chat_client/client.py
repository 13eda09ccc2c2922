"""A resilient Python client: the reference for bots, and the CLI's engine.

It keeps every room it has joined complete and free of duplicates across
reconnects, by the same rules as the browser (static/chat/):
- on (re)connect it rejoins each room with `since` = the contiguous seq held;
- a `message` past a hole, or an incomplete page, fetches the rest with `history`;
- a message seq already held is dropped;
- each `send` keeps its client_id until acked, and is resent after a reconnect.

`on_message(message)` sees each room's messages once each, in seq order. A
refused handshake (HTTP 401/403) or a close saying the credentials no longer
hold (4401, 4400) stops the client, with `failure` saying why: retrying would
not help.
"""

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import websockets
import websockets.exceptions

from chat.roomstate import SeqTracker

logger = logging.getLogger(__name__)
FATAL_CLOSE_CODES = {4400, 4401}
FATAL_HANDSHAKE_STATUSES = {401, 403}
CONNECT_ERRORS = (OSError, TimeoutError, websockets.exceptions.WebSocketException)
IDLE_PING = 25.0  # seconds of silence before a `ping`
PONG_TIMEOUT = 10.0  # further seconds of silence before reconnecting


class ChatClient:
    def __init__(
        self,
        urls: str | list[str],
        *,
        rooms: Iterable[str],
        headers: dict[str, str] | None = None,
        on_frame: Callable[[dict[str, Any]], None] | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        backoff: tuple[float, float] = (0.25, 5.0),
    ) -> None:
        # Several URLs (replicas): the next one is tried after each failed connection.
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.headers = headers or {}
        self.on_frame = on_frame
        self.on_message = on_message
        self.failure: str | None = None
        self.backoff = backoff
        self.rooms: dict[str, SeqTracker | None] = dict.fromkeys(rooms)  # None: not joined yet
        self.messages: dict[str, dict[int, dict[str, Any]]] = {room: {} for room in self.rooms}
        self._delivered: dict[str, int] = {}  # per room: the seq on_message has reached
        self.outbox: dict[str, dict[str, Any]] = {}  # client_id -> send frame, until acked
        self.acked: dict[str, int] = {}  # client_id -> seq
        # dropped: seqs already held (expected after a reconnect, when `since`
        # re-sends what lay above a hole); resent: a seq the server sent twice
        # on one connection, which it promises never to do.
        self.stats = {"connects": 0, "dropped": 0, "resent": 0, "gap_fetches": 0}
        self._received: dict[str, set[int]] = {}  # per connection
        self._tasks: set[asyncio.Task] = set()
        self.ws: websockets.ClientConnection | None = None
        self.joined = asyncio.Event()
        # False from a (re)connect until the outbox has been resent: a new send
        # waits for the resend, so a sender's messages keep their order.
        self._resumed = False
        self._changed = asyncio.Condition()
        self._stopped = False

    # --- public --------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until `stop()`, reconnecting with exponential backoff and jitter."""
        attempt = 0
        while not self._stopped:
            url = self.urls[attempt % len(self.urls)]
            try:
                async with websockets.connect(
                    url, additional_headers=self.headers, open_timeout=5
                ) as ws:
                    self.ws = ws
                    self.stats["connects"] += 1
                    self._received = {room: set() for room in self.rooms}
                    attempt = 0
                    keepalive = asyncio.create_task(self._keepalive(ws))
                    try:
                        await self._resume()
                        async for text in ws:
                            self._heard = asyncio.get_running_loop().time()
                            await self._handle(json.loads(text))
                    finally:
                        keepalive.cancel()
            except websockets.exceptions.InvalidStatus as exc:
                if exc.response.status_code in FATAL_HANDSHAKE_STATUSES:
                    self.failure = f"handshake refused: HTTP {exc.response.status_code}"
                    break
                logger.debug("handshake failed: %r", exc)
            except CONNECT_ERRORS as exc:
                logger.debug("connection lost: %r", exc)
            if self.ws is not None and self.ws.close_code in FATAL_CLOSE_CODES:
                self.failure = f"closed by the server: {self.ws.close_code} {self.ws.close_reason}"
                self.ws = None
                break
            self.ws = None
            self._resumed = False
            self.joined.clear()
            if self._stopped:
                break
            low, high = self.backoff
            await asyncio.sleep(min(high, low * 2**attempt) * random.uniform(0.5, 1.0))
            attempt += 1

    async def stop(self) -> None:
        self._stopped = True
        if self.ws is not None:
            await self.ws.close()

    async def send(self, room: str, body: str, client_id: str | None = None) -> str:
        """Queue a message; it is sent now if connected, and resent until acked."""
        frame = {
            "type": "send",
            "room": room,
            "body": body,
            "client_id": client_id or str(uuid.uuid4()),
        }
        self.outbox[frame["client_id"]] = frame
        if self._resumed:
            await self._send(frame)
        return frame["client_id"]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        """Wait until predicate() holds, re-checked after every frame."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def seqs(self, room: str) -> list[int]:
        return sorted(self.messages[room])

    # --- protocol ------------------------------------------------------------

    async def _keepalive(self, ws: websockets.ClientConnection) -> None:
        """Ping a silent server, and drop a connection that stays silent."""
        loop = asyncio.get_running_loop()
        self._heard = loop.time()
        while True:
            await asyncio.sleep(IDLE_PING / 5)
            idle = loop.time() - self._heard
            if idle > IDLE_PING + PONG_TIMEOUT:
                ws.transport.abort()
                return
            if idle > IDLE_PING:
                await self._send({"type": "ping"})

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws is not None:
            try:
                await self.ws.send(json.dumps(frame))
            except websockets.exceptions.ConnectionClosed:
                pass  # resent on reconnect

    async def _resume(self) -> None:
        for room, tracker in self.rooms.items():
            since = None if tracker is None else tracker.low
            await self._send({"type": "join", "room": room, "since": since})
        resent: set[str] = set()
        while pending := [f for cid, f in self.outbox.items() if cid not in resent]:
            for frame in pending:
                resent.add(frame["client_id"])
                await self._send(frame)
        self._resumed = True

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "joined":
            room = frame["room"]
            if self.rooms[room] is None:
                first = frame["messages"][0]["seq"] - 1 if frame["messages"] else frame["last_seq"]
                self.rooms[room] = SeqTracker(low=first)
                self._delivered[room] = first
            await self._take(room, frame["messages"], complete=frame["complete"])
            if all(tracker is not None for tracker in self.rooms.values()):
                self.joined.set()
        elif kind == "history" and frame["after"] is not None:  # this client fetches forward only
            await self._take(frame["room"], frame["messages"], complete=frame["complete"])
        elif kind == "message":
            tracker = self.rooms.get(frame["room"])
            if tracker is not None:
                hole = frame["seq"] > tracker.high + 1
                await self._take(frame["room"], [frame], complete=True, live=True)
                if hole:
                    await self._fetch_after(frame["room"], tracker.low)
        elif kind == "ack":
            self.outbox.pop(frame["client_id"], None)
            self.acked[frame["client_id"]] = frame["seq"]
        elif kind == "error" and frame["code"] in {"unavailable", "rate_limited", "overloaded"}:
            task = asyncio.create_task(self._retry_later(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "error" and frame["ref"] in self.outbox:
            # Refused for good (too long, a room it may not use): resending would not help.
            self.outbox.pop(frame["ref"])
        if self.on_frame is not None:
            self.on_frame(frame)
        async with self._changed:
            self._changed.notify_all()

    async def _take(
        self, room: str, messages: list[dict[str, Any]], *, complete: bool, live: bool = False
    ) -> None:
        tracker, received = self.rooms[room], self._received[room]
        if tracker is None:
            return  # not joined (any more): nothing to take
        for message in messages:
            # A history page we asked for may repeat what we hold; a live one may not.
            if live and message["seq"] in received:
                self.stats["resent"] += 1
            received.add(message["seq"])
            if tracker.accept(message["seq"]):
                self.messages[room][message["seq"]] = message
            else:
                self.stats["dropped"] += 1
        while self._delivered[room] < tracker.low:
            self._delivered[room] += 1
            if self.on_message is not None:
                self.on_message(self.messages[room][self._delivered[room]])
        if not complete and messages:
            await self._fetch_after(room, messages[-1]["seq"])

    async def _fetch_after(self, room: str, after: int) -> None:
        self.stats["gap_fetches"] += 1
        await self._send({"type": "history", "room": room, "after": after, "limit": 100})

    async def _retry_later(self, error: dict[str, Any]) -> None:
        """Resend what the server could not take yet: a join or a send."""
        await asyncio.sleep(error.get("retry_after") or 1.0)
        if error["ref"] == "join":
            await self._resume()
        elif error["ref"] in self.outbox:
            await self._send(self.outbox[error["ref"]])

"""A resilient Python client: the reference for bots, and the CLI's engine.

It keeps every room it has joined complete and free of duplicates across
reconnects, by the same rules as the browser (static/chat/):
- on (re)connect it rejoins each room with `since` = the contiguous seq held;
- a `message` past a hole, or an incomplete page, fetches the rest with `history`;
- a message seq already held is dropped;
- each `send` keeps its client_id until acked, and is resent after a reconnect.

Sends go out in the order they were made, at most `window` unacked at a time.
A send refused for a while (`rate_limited`, `overloaded`, `unavailable`)
holds every send until its `retry_after` has passed, then they go again in
order: a sender's messages are stored in the order it sent them. A send the
server refuses for good, or one over the limits `hello` gave (too long), is
dropped and reported to `on_refused(frame, error)`.

`on_message(message)` sees each room's messages once each, in seq order. A
refused handshake (HTTP 401/403), a close saying the credentials or the name
no longer hold (4401, 4400), or, before the first connection, `connect_attempts`
failed tries in a row stop the client, with `failure` saying why: retrying
would not help.
"""

import asyncio
import errno
import json
import logging
import random
import socket
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
# A handshake with a token refused (HTTP 401 or 403): the token is the reason.
TOKEN_REFUSED = (
    "the server refused the token (wrong, revoked or expired): make a new one in"
    " Settings, API tokens, or with `manage.py chattoken USERNAME` on the server"
)
# Refusals that say "not now": the send goes again after `retry_after`.
RETRYABLE = {"unavailable", "rate_limited", "overloaded"}
# Added to each `retry_after`: a resend that arrives a hair early is refused
# again, and the sends behind it could then overtake it.
RETRY_MARGIN = 0.05


def connect_error_text(exc: BaseException) -> str:
    """Why a connection could not be made, as a person would say it."""
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, websockets.exceptions.InvalidURI):
        return "not a ws:// or wss:// URL"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    # A name with several addresses (localhost: ::1 and 127.0.0.1) fails with
    # one OSError that lists each address's error.
    if isinstance(exc, OSError) and (
        exc.errno == errno.ECONNREFUSED or f"[Errno {errno.ECONNREFUSED}]" in str(exc)
    ):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class ChatClient:
    def __init__(
        self,
        urls: str | list[str],
        *,
        rooms: Iterable[str],
        headers: dict[str, str] | None = None,
        on_frame: Callable[[dict[str, Any]], None] | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        on_refused: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
        backoff: tuple[float, float] = (0.25, 5.0),
        window: int = 8,
        connect_attempts: int | None = None,
    ) -> None:
        # Several URLs (replicas): the next one is tried after each failed connection.
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.headers = headers or {}
        self.on_frame = on_frame
        self.on_message = on_message
        self.on_refused = on_refused
        self.on_wait = on_wait  # (error): a hold begins, until its retry_after
        self.failure: str | None = None
        self.backoff = backoff
        self.window = window
        self.connect_attempts = connect_attempts  # None: keep trying
        self.limits: dict[str, int] = {}  # from `hello`
        self.rooms: dict[str, SeqTracker | None] = dict.fromkeys(rooms)  # None: not joined yet
        self.messages: dict[str, dict[int, dict[str, Any]]] = {room: {} for room in self.rooms}
        self._delivered: dict[str, int] = {}  # per room: the seq on_message has reached
        self.outbox: dict[str, dict[str, Any]] = {}  # client_id -> send frame, until acked
        self.acked: dict[str, int] = {}  # client_id -> seq
        self.refused: dict[str, dict[str, Any]] = {}  # client_id -> the error, for good
        # Answers the server gave (joined, acks, refusals): a caller's timeout
        # can tell a server that works slowly from one that does not answer.
        self.answers = 0
        self._in_flight: set[str] = set()  # sent on this connection, not yet answered
        self._held_until = 0.0  # loop time: no send goes before it
        # Since a send was refused for a while: nothing goes until every send
        # in flight is answered, so that none overtakes the refused one.
        self._resending = False
        # The sends let out unanswered: back to 1 after a refusal, and one more
        # per ack up to `window`, so a rate-limited sender is not refused for
        # a whole window each time it waits.
        self._open = window
        self._hold: asyncio.TimerHandle | None = None
        self._pumping = asyncio.Lock()
        # dropped: seqs already held (expected after a reconnect, when `since`
        # re-sends what lay above a hole); resent: a seq the server sent twice
        # on one connection, which it promises never to do.
        self.stats = {"connects": 0, "dropped": 0, "resent": 0, "gap_fetches": 0}
        self._received: dict[str, set[int]] = {}  # per connection
        self._tasks: set[asyncio.Task] = set()
        self.ws: websockets.ClientConnection | None = None
        self.joined = asyncio.Event()
        # False from a (re)connect until `hello` came and the rooms were
        # rejoined: sends wait for it, and for the limits it gives.
        self._resumed = False
        self._changed = asyncio.Condition()
        self._stopped = False

    # --- public --------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until `stop()`, reconnecting with exponential backoff and jitter."""
        attempt = failed = 0
        while not self._stopped:
            url = self.urls[attempt % len(self.urls)]
            where = url.split("?")[0]  # without a guest's name
            refusal: dict[str, Any] | None = None  # the error a refused connection gave
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
                        async for text in ws:
                            self._heard = asyncio.get_running_loop().time()
                            frame = json.loads(text)
                            if frame["type"] == "error" and frame.get("ref") is None:
                                refusal = frame
                            await self._handle(frame)
                    finally:
                        keepalive.cancel()
            except websockets.exceptions.InvalidURI as exc:
                self.failure = f"cannot connect to {where}: {connect_error_text(exc)}"
                break
            except (websockets.exceptions.InvalidStatus, *CONNECT_ERRORS) as exc:
                logger.debug("connection failed or lost: %r", exc)
                status = getattr(getattr(exc, "response", None), "status_code", None)
                failed += self.stats["connects"] == 0
                if status in FATAL_HANDSHAKE_STATUSES and "Authorization" in self.headers:
                    self.failure = f"cannot connect to {where}: {TOKEN_REFUSED}"
                    break
                if status in FATAL_HANDSHAKE_STATUSES or failed == self.connect_attempts:
                    self.failure = f"cannot connect to {where}: {connect_error_text(exc)}"
                    break
            if self.ws is not None and self.ws.close_code in FATAL_CLOSE_CODES:
                why = f"{refusal['code']}: {refusal['detail']}" if refusal else self.ws.close_reason
                self.failure = f"refused by the server ({self.ws.close_code}): {why}"
                self.ws = None
                break
            self.ws = None
            self._resumed = False
            self._in_flight.clear()
            self._resending = False
            self.joined.clear()
            if self._stopped:
                break
            low, high = self.backoff
            await asyncio.sleep(min(high, low * 2**attempt) * random.uniform(0.5, 1.0))
            attempt += 1

    async def stop(self, *, abort: bool = False) -> None:
        """Close and stop reconnecting; `abort` drops the connection without
        waiting for a server that does not answer to close it."""
        self._stopped = True
        if self.ws is not None and abort:
            self.ws.transport.abort()
        elif self.ws is not None:
            await self.ws.close()

    async def send(self, room: str, body: str, client_id: str | None = None) -> str:
        """Queue a message: it goes in its turn, and is resent until acked."""
        frame = {
            "type": "send",
            "room": room,
            "body": body,
            "client_id": client_id or str(uuid.uuid4()),
        }
        self.outbox[frame["client_id"]] = frame
        await self._pump()
        async with self._changed:
            self._changed.notify_all()
        return frame["client_id"]

    def held_for(self) -> float:
        """Seconds until held sends may go again (0: not held)."""
        return max(0.0, self._held_until - asyncio.get_running_loop().time())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait until predicate() holds, re-checked after every frame and send."""
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
        self._resumed = True
        await self._pump()

    async def _pump(self) -> None:
        """Send the outbox in order, up to `window` unanswered, unless held."""
        async with self._pumping:  # one sender at a time: the frames keep their order
            self._resending = self._resending and bool(self._in_flight)
            for client_id, frame in list(self.outbox.items()):
                held = self._held_until > asyncio.get_running_loop().time() or self._resending
                if not self._resumed or held or len(self._in_flight) >= self._open:
                    return
                if self.rooms.get(frame["room"], True) is None:
                    return  # its room's first join is not answered: it may be refused
                if client_id in self._in_flight or client_id not in self.outbox:
                    continue
                if error := self._over_limits(frame):
                    self._refuse(frame, error)
                    continue
                self._in_flight.add(client_id)
                await self._send(frame)

    def _over_limits(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """A refusal for a send the server would refuse for its size, made here."""
        chars, most = len(frame["body"]), self.limits.get("max_body_chars")
        if most is not None and chars > most:
            detail = f"the message is {chars:,} characters; this server takes at most {most:,}"
        elif len(json.dumps(frame).encode()) > self.limits.get("max_frame_bytes", 1 << 62):
            detail = f"the frame is over this server's {self.limits['max_frame_bytes']:,} bytes"
        else:
            return None
        return {"type": "error", "code": "too_large", "detail": detail, "ref": frame["client_id"]}

    def _refuse(self, frame: dict[str, Any], error: dict[str, Any]) -> None:
        self.outbox.pop(frame["client_id"], None)
        self.refused[frame["client_id"]] = error
        if self.on_refused is not None:
            self.on_refused(frame, error)

    def _hold_for(self, error: dict[str, Any]) -> None:
        """Hold every send until `retry_after` has passed, then pump again."""
        loop = asyncio.get_running_loop()
        until = loop.time() + (error.get("retry_after") or 1.0) + RETRY_MARGIN
        if until <= self._held_until:
            return
        began = self._held_until <= loop.time()  # a new wait, not one more refusal within it
        self._held_until = until
        if began and self.on_wait is not None:
            self.on_wait(error)
        if self._hold is not None:
            self._hold.cancel()
        self._hold = loop.call_at(until, lambda: self._spawn(self._pump()))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "hello":
            self.limits = frame["limits"]
            await self._resume()
        elif kind == "joined":
            self.answers += 1
            room = frame["room"]
            if self.rooms[room] is None:
                first = frame["messages"][0]["seq"] - 1 if frame["messages"] else frame["last_seq"]
                self.rooms[room] = SeqTracker(low=first)
                self._delivered[room] = first
            await self._take(room, frame["messages"], complete=frame["complete"])
            if all(tracker is not None for tracker in self.rooms.values()):
                self.joined.set()
            await self._pump()
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
            self.answers += 1
            self.outbox.pop(frame["client_id"], None)
            self._in_flight.discard(frame["client_id"])
            self._open = min(self.window, self._open + 1)
            self.acked[frame["client_id"]] = frame["seq"]
            await self._pump()
        elif kind == "error" and frame["ref"] == "join" and frame["code"] in RETRYABLE:
            self._spawn(self._rejoin_later(frame))
        elif kind == "error" and frame["ref"] == "join":  # a room it may not read, say
            self.failure = f"cannot join: {frame['code']}: {frame['detail']}"
            self._spawn(self.stop())
        elif kind == "error" and frame["ref"] in self.outbox:
            self.answers += 1
            self._in_flight.discard(frame["ref"])
            if frame["code"] in RETRYABLE:
                self._resending, self._open = True, 1
                self._hold_for(frame)
                await self._pump()  # the hold may be over, and the last answer this one
            else:  # refused for good (a room it may not use): resending would not help
                self._refuse(self.outbox[frame["ref"]], frame)
                await self._pump()
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

    async def _rejoin_later(self, error: dict[str, Any]) -> None:
        """Join again once the server can take it (the channel layer was away)."""
        await asyncio.sleep(error.get("retry_after") or 1.0)
        await self._resume()

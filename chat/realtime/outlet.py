"""Writing frames to a socket, below Channels' `send`: one small adapter per server.

A room event is encoded and framed once (`Frame`), then written to every
local socket of the room with a plain call: under daphne straight into the
connection's autobahn protocol (`sendPreparedMessage`: the WebSocket frame
is built once for all), under any other ASGI server through a per-socket
queue drained by the ASGI `send`. Either way a write neither awaits nor
makes a task per member, and a client whose backlog passes
CHAT_MAX_OUTBOUND_BYTES is closed with 4008 "too slow" (it reconnects and
catches up with `since`).

`outlet_scope` (in chatsite/asgi.py, outermost) puts the socket's outlet in
its scope, as "chat.outlet"; the consumer writes its own frames through it
too, so that every frame of a socket keeps its order.
"""

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from django.conf import settings

from chat import protocol
from chat.realtime.server import outbound_refuse, write_now

Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class Frame:
    """One encoded text frame, framed for daphne at most once whatever the sockets."""

    __slots__ = ("_prepared", "data", "text", "views")

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode()
        self._prepared: Any = None
        # Per GraphQL selection, this frame's `next` payload, made once for
        # every subscriber of that selection (chat/realtime/graphql.py).
        self.views: dict[tuple, str] | None = None

    def prepared(self) -> Any:
        """The autobahn PreparedMessage of this frame (made on first use)."""
        if self._prepared is None:
            from autobahn.websocket.protocol import PreparedMessage

            self._prepared = PreparedMessage(
                self.data, isBinary=False, applyMask=False, doNotCompress=True
            )
        return self._prepared


class Outlet(Protocol):
    def write(self, frame: Frame) -> None:
        """Queue the frame to the client, in order; dropped if the socket is closing."""

    async def flush(self) -> None:
        """Wait until every frame written has been handed to the server."""


class DaphneOutlet:
    """Writes into daphne's protocol object for the connection (same thread:
    daphne runs Twisted on the asyncio loop)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def write(self, frame: Frame) -> None:
        ws = self.ws
        if outbound_refuse(ws):
            return
        if ws.send_queue or ws._perMessageCompress is not None:
            ws.sendPreparedMessage(frame.prepared())  # autobahn's own way
        else:
            write_now(ws.transport, frame.prepared().payloadHybi)

    async def flush(self) -> None:
        return None  # every write is in Twisted's buffer already


class AsgiOutlet:
    """Queues frames for the ASGI `send`, drained by one task while there are any."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.queue: deque[Frame] = deque()
        self.queued = 0  # bytes in the queue
        self.task: asyncio.Task | None = None
        self.closed = False
        self.pending_close: dict[str, Any] | None = None  # 4008, once the drain is done

    def write(self, frame: Frame) -> None:
        if self.closed:
            return
        if self.queued + len(frame.data) > settings.CHAT_MAX_OUTBOUND_BYTES:
            self.closed = True
            self.queue.clear()
            close = {"type": "websocket.close", "code": int(protocol.CloseCode.TOO_SLOW)}
            if self.task is None:  # else the drain is mid-send: it sends the close after
                self.task = asyncio.get_running_loop().create_task(self.send(close))
            else:
                self.pending_close = close
            return
        self.queue.append(frame)
        self.queued += len(frame.data)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.queue:
                frame = self.queue.popleft()
                self.queued -= len(frame.data)
                await self.send({"type": "websocket.send", "text": frame.text})
            if self.pending_close is not None:
                await self.send(self.pending_close)
        except Exception:
            self.closed = True  # the connection went: the client recovers with `since`
            self.queue.clear()
        finally:
            self.task = None

    async def flush(self) -> None:
        while self.task is not None:
            await asyncio.shield(self.task)


def outlet_for(send: Send) -> Outlet:
    """The outlet of a socket whose ASGI `send` this is."""
    if isinstance(send, functools.partial) and send.args:
        from daphne.ws_protocol import WebSocketProtocol

        if isinstance(send.args[0], WebSocketProtocol):
            return DaphneOutlet(send.args[0])  # daphne's send is partial(handle_reply, protocol)
    return AsgiOutlet(send)


def outlet_scope(app: Callable) -> Callable:
    """ASGI middleware: give each WebSocket's scope its outlet ("chat.outlet")."""

    async def with_outlet(scope: dict, receive: Callable, send: Send) -> None:
        if scope["type"] == "websocket":
            scope["chat.outlet"] = outlet_for(send)  # daphne's scope, the connection's own
        await app(scope, receive, send)

    return with_outlet

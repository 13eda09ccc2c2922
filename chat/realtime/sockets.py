"""This process's open sockets: the registry the sweep, the drain and the
relay read, and the `Socket` they see of each."""

import asyncio
import weakref
from typing import Any, Protocol

from chat.actor import Actor
from chat.events import RoomEvent, RoomGroupEvent, RoomRemoved
from chat.realtime.outlet import Frame
from chat.roomstate import SeqTracker


class Socket(Protocol):
    """What the process's background work needs of a socket (a ChatConsumer)."""

    actor: Actor
    channel_name: str
    scope: dict[str, Any]
    session_key: str | None
    address: str | None  # the client's
    holder: str | None
    loop: asyncio.AbstractEventLoop

    @property
    def closed(self) -> asyncio.Event: ...

    rooms: dict[str, SeqTracker]
    # Per room being joined, the events held until its `joined` is sent.
    joining: dict[str, list[RoomGroupEvent]]

    def deliver(self, event: RoomEvent, frame: Frame) -> bool: ...
    async def fill(self, slug: str) -> None: ...
    async def room_removed(self, event: RoomRemoved) -> None: ...
    async def end_session(self, detail: str) -> None: ...
    async def restart(self) -> None: ...


_sockets: "weakref.WeakSet[Any]" = weakref.WeakSet()


def socket_register(socket: Socket) -> None:
    """Track a connected socket."""
    _sockets.add(socket)


def socket_unregister(socket: Socket) -> bool:
    """Stop tracking a socket; True if it was tracked."""
    tracked = socket in _sockets
    _sockets.discard(socket)
    return tracked


def sockets_open() -> list[Socket]:
    """This event loop's connected sockets."""
    loop = asyncio.get_running_loop()
    return [s for s in list(_sockets) if getattr(s, "loop", None) is loop]

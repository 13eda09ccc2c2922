"""This process's subscriptions on the channel layer, and the live fan-out
of what arrives to the process's sockets.

Each room's and each signed-in user's events reach a process once, on one
channel of the process (the relay's), whatever number of its sockets are in
the room or are the user's; the relay hands them to those sockets here. The
events are published, after their writes commit, by chat/services/broadcast.py.
"""

import asyncio
import logging
import time
from typing import Any

from channels.layers import get_channel_layer

from chat import events, metrics, protocol
from chat.models import Room as RoomRow
from chat.perloop import PerLoop
from chat.realtime.framecache import RoomFrames
from chat.realtime.known import RoomKnown
from chat.realtime.outlet import Frame
from chat.realtime.sockets import Socket
from chat.selectors.rooms import rooms_barred
from chat.services.broadcast import (
    LAYER_ERRORS,
    ORIGIN,
    layer_call,
    local_delivery,
    room_group,
    user_group,
)

logger = logging.getLogger(__name__)


class Relay:
    """This process's subscriptions on the channel layer, and its live fan-out.

    A socket has no channel, queue or reader of its own.
    A room event is framed once (chat/realtime/outlet.py) and written to each member
    socket by a plain call: no task, await or dict per member.
    """

    def __init__(self) -> None:
        self.channel: str | None = None
        self.rooms: dict[str, dict[Socket, None]] = {}  # slug -> this process's sockets in it
        self.users: dict[int, dict[Socket, None]] = {}  # user id -> this process's sockets
        self.frames: dict[str, RoomFrames] = {}  # slug -> its recent frames (rooms above)
        self.known: dict[str, RoomKnown] = {}  # slug -> what joins need of it (rooms above)
        self.lock = asyncio.Lock()  # orders a group's group_add and group_discard
        self.reader: asyncio.Task | None = None
        self.checks: set[asyncio.Task] = set()  # access checks running (held: weak refs)

    async def add(self, groups: dict, key: Any, group: str, socket: Socket) -> None:
        async with self.lock:
            layer = get_channel_layer()
            if self.channel is None:
                self.channel = await layer.new_channel()
            if key not in groups:
                await layer.group_add(group, self.channel)
                groups[key] = {}
                if groups is self.rooms:
                    self.frames[key] = RoomFrames()
            groups[key][socket] = None
            if self.reader is None or self.reader.done():
                self.reader = asyncio.get_running_loop().create_task(self._read())

    async def discard(self, groups: dict, key: Any, group: str, socket: Socket) -> None:
        async with self.lock:
            members = groups.get(key)
            if members is None or members.pop(socket, False) is False or members:
                return
            del groups[key]
            if groups is self.rooms:
                del self.frames[key]
                self.known.pop(key, None)  # it hears no more of the room's changes
            await get_channel_layer().group_discard(group, self.channel)

    async def _read(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                event = await layer.receive(self.channel)
            except LAYER_ERRORS as exc:
                metrics.LAYER_FAILURES.labels("receive").inc()
                logger.warning("relay: channel layer unavailable (%s)", exc)
                await asyncio.sleep(1)  # the sweep fills what this loses
                continue
            if event["type"] == "room.event":
                if event.get("origin") != ORIGIN:  # this process's own went out at once
                    self.fan_out(event)
                continue
            if event["type"] == "room.access":
                self.forget(event)
                # Off the reader: it reads the database, and room events go on meanwhile.
                check = asyncio.get_running_loop().create_task(self.access_check(event))
                self.checks.add(check)
                check.add_done_callback(self.checks.discard)
                continue
            # A user's events (rare): each of their sockets' handler, by type.
            sockets = self.users.get(event["user_id"], {})
            handler = event["type"].replace(".", "_")
            for socket in list(sockets):
                try:
                    await getattr(socket, handler)(event)
                except Exception:
                    logger.exception("delivering %s to a socket failed", event["type"])

    def forget(self, event: events.RoomAccess) -> None:
        """Who may be in a room changed: forget what joins knew of it (the
        user's standing, or everything), before any join reads it again."""
        known = self.known.get(event["room"])
        if known is not None and event["user_id"] is not None:
            known.people.pop(event["user_id"], None)
        elif known is not None:
            del self.known[event["room"]]

    async def access_check(self, event: events.RoomAccess) -> None:
        """Who may read a room changed: check this process's sockets in it
        again (the user's, or all), and take out those that may no longer
        read it. A socket still joining holds the event, and checks once joined."""
        slug, user_id = event["room"], event["user_id"]
        ready = []
        for socket in list(self.rooms.get(slug, ())):
            if user_id is not None and socket.actor.user_id != user_id:
                continue
            if (held := socket.joining.get(slug)) is not None:
                held.append(event)
            else:
                ready.append(socket)
        try:
            await sockets_recheck(ready)
        except Exception:
            logger.exception("checking who may read %s failed: the sweep will", slug)

    def fan_out(self, event: events.RoomEvent) -> None:
        """Write a room event to this process's sockets in the room."""
        sockets = self.rooms.get(event["room"])
        if not sockets:
            return
        if event["seq"] is not None and (frames := self.frames.get(event["room"])) is not None:
            erase = event["kind"] == protocol.EntryKind.DELETE
            frames.add(event["seq"], event["text"], target=event["target"], erase=erase)
            if (known := self.known.get(event["room"])) is not None:
                known.seen(event["seq"])
        frame = Frame(event["text"])
        sent = 0
        for socket in sockets:  # no await in the loop: the set cannot change under it
            try:
                sent += socket.deliver(event, frame)
            except Exception:
                logger.exception("delivering a room event failed")
        metrics.FRAMES_OUT.labels(event["frame"]).inc(sent)
        if event["seq"] is not None:
            metrics.BROADCAST_LATENCY.observe(time.time() - event["committed"])


_relay = PerLoop(Relay)
local_delivery(lambda event: _relay.get().fan_out(event))


async def sockets_recheck(sockets: list[Socket]) -> None:
    """Take these sockets out of the rooms they may no longer read, saying why
    (a ban, removed from a private room's members, a guest in a room made
    private, a room gone): in one query of each kind, whatever their number."""
    pairs = {(s.actor.user_id, slug) for s in sockets for slug in s.rooms}
    barred = await rooms_barred(pairs=pairs)
    for socket in sockets:
        for slug in list(socket.rooms):
            if reason := barred.get((socket.actor.user_id, slug)):
                removed = events.room_removed(
                    user_id=socket.actor.user_id, room=slug, reason=reason
                )
                await socket.room_removed(removed)


def room_known(slug: str, *, make: RoomRow | None = None) -> RoomKnown | None:
    """What this process knows of a room it is subscribed to (chat/realtime/known.py);
    with `make`, the room's row read since the subscription, known from it
    if nothing was. None for a room it is not subscribed to."""
    relay = _relay.get()
    if slug not in relay.rooms:
        return None
    if slug not in relay.known and make is not None:
        relay.known[slug] = RoomKnown(
            id=make.pk,
            slug=make.slug,
            title=make.title,
            private=make.private,
            kind=make.kind,
            guests_can_write=make.guests_can_write,
            last_seq=make.last_seq,
        )
    return relay.known.get(slug)


def rooms_seen(last_seqs: dict[str, int]) -> None:
    """The sweep read these rooms' last_seq: what joins know rises to it."""
    relay = _relay.get()
    for slug, last_seq in last_seqs.items():
        if (known := relay.known.get(slug)) is not None:
            known.seen(last_seq)


def room_frames(slug: str) -> RoomFrames | None:
    """The recent frames of a room this process is subscribed to (chat/realtime/framecache.py)."""
    return _relay.get().frames.get(slug)


async def room_subscribe(*, slug: str, socket: Socket) -> None:
    """Have the socket receive the room's events, or raise `unavailable`
    (and leave no trace)."""
    relay = _relay.get()
    try:
        await relay.add(relay.rooms, slug, room_group(slug), socket)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_add").inc()
        await room_unsubscribe(slug=slug, socket=socket)
        logger.warning("cannot join %s: channel layer unavailable (%s)", slug, exc)
        raise protocol.ChatError(
            protocol.ErrorCode.UNAVAILABLE, "live delivery is unavailable; retry", retry_after=1.0
        ) from None


async def room_unsubscribe(*, slug: str, socket: Socket) -> None:
    """Stop the socket's room events. Best effort: with the layer away, the
    local membership is dropped and the subscription dies with Redis."""
    relay = _relay.get()
    leaving = relay.discard(relay.rooms, slug, room_group(slug), socket)
    await layer_call("group_discard", f"leaving {slug}", leaving)


async def user_subscribe(*, user_id: int, socket: Socket) -> None:
    """Have the socket receive its user's events. Raises the layer's error:
    the caller refuses the socket rather than keep one it could not reach."""
    relay = _relay.get()
    await relay.add(relay.users, user_id, user_group(user_id), socket)


async def user_unsubscribe(*, user_id: int, socket: Socket) -> None:
    relay = _relay.get()
    leaving = relay.discard(relay.users, user_id, user_group(user_id), socket)
    await layer_call("group_discard", "unsubscribing a user's socket", leaving)

"""Groups on the channel layer: one per room, and one per signed-in user's
sockets. Group names are built here and nowhere else. Also this process's
Redis client, for the state shared beside the layer (presence, rate limits)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis.asyncio
import redis.exceptions
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from chat import events, metrics, protocol
from chat.framecache import RoomFrames
from chat.outlet import Frame
from chat.perloop import PerLoop
from chat.selectors.rooms import rooms_barred
from chat.sockets import Socket

logger = logging.getLogger(__name__)

# What a channel layer raises when its backend (Redis) is away or full.
LAYER_ERRORS = (redis.exceptions.RedisError, OSError, ChannelFull)


async def layer_call(operation: str, lost: str, call: Awaitable[object]) -> bool:
    """Await a channel-layer call; with the layer away, count the failure of
    `operation`, log what was `lost`, and return False (the caller goes on)."""
    try:
        await call
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels(operation).inc()
        logger.warning("%s: channel layer unavailable (%s)", lost, exc)
        return False
    return True


# Set while a service makes changes it announces itself (with what it
# knows, such as a kick's reason): the model signals' receivers then stay quiet.
_announced: ContextVar[bool] = ContextVar("chat_changes_announced", default=False)


@contextmanager
def changes_announced() -> Iterator[None]:
    """Within: the changes made here are announced by the service making them.
    Changes made any other way (the admin, a shell, any ORM save) are
    announced by the model signals (chat/services/moderation.py)."""
    reset = _announced.set(True)
    try:
        yield
    finally:
        _announced.reset(reset)


def changes_unannounced() -> bool:
    """Whether the change being saved is left to the model signals to announce."""
    return not _announced.get()


def on_commit_broadcast(send: Callable[..., Awaitable[object]], **kwargs: Any) -> None:
    """From sync code in a transaction (the admin, a signal): run the
    broadcast `send(**kwargs)` once the transaction commits (at once outside
    one). Async services await their broadcast after their transaction instead."""
    transaction.on_commit(lambda: async_to_sync(send)(**kwargs))


def _redis_connect() -> redis.asyncio.Redis:
    # Blocking: past max_connections a command waits for a free connection
    # (redis-py's default pool raises "Too many connections" at 100, which a
    # join storm reaches).
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL, max_connections=50, timeout=5, socket_timeout=2
    )
    return redis.asyncio.Redis(connection_pool=pool)


_redis = PerLoop(_redis_connect)


def redis_client() -> redis.asyncio.Redis | None:
    """This event loop's Redis client, or None without REDIS_URL."""
    return _redis.get() if settings.REDIS_URL else None


def room_group(slug: str) -> str:
    """The channel-layer group of a room's sockets."""
    return f"room.{slug}"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's sockets."""
    return f"user.{user_id}"


class Relay:
    """This process's subscriptions on the channel layer, and its live fan-out.

    The layer carries each room's and each user's events to a process once,
    on one channel of the process (the relay's), whatever number of its
    sockets are in the room or are the user's; the relay hands them to those
    sockets in-process. A socket has no channel, queue or reader of its own.
    A room event is framed once (chat/outlet.py) and written to each member
    socket by a plain call: no task, await or dict per member.
    """

    def __init__(self) -> None:
        self.channel: str | None = None
        self.rooms: dict[str, dict[Socket, None]] = {}  # slug -> this process's sockets in it
        self.users: dict[int, dict[Socket, None]] = {}  # user id -> this process's sockets
        self.frames: dict[str, RoomFrames] = {}  # slug -> its recent frames (rooms above)
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
                self.fan_out(event)
                continue
            if event["type"] == "room.access":
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


def room_frames(slug: str) -> RoomFrames | None:
    """The recent frames of a room this process is subscribed to (chat/framecache.py)."""
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


async def room_broadcast(
    *,
    room: str,
    frame: protocol.ServerFrame,
    seq: int | None = None,
    target: int | None = None,
    kind: str | None = None,
    exclude: str | None = None,
) -> bool:
    """Send a frame to every socket in the room, encoded once for all of them.

    `seq` lets each socket drop a message it already holds (`target` names
    the message a change entry changes, and `kind` what the entry is);
    `exclude` names a channel that should not get it (the typist, for
    typing). Call only after the write it announces has committed. Returns
    False when the layer is away: the write stands, and sockets get a stored
    message from the sweep instead.
    """
    event = events.room_event(
        room=room,
        frame=frame.type,
        text=protocol.encode(frame),
        seq=seq,
        target=target,
        kind=kind,
        exclude=exclude,
    )
    send = get_channel_layer().group_send(room_group(room), event)
    return await layer_call("group_send", f"broadcast to {room} lost", send)


async def user_subscribe(*, user_id: int, socket: Socket) -> None:
    """Have the socket receive its user's events. Raises the layer's error:
    the caller refuses the socket rather than keep one it could not reach."""
    relay = _relay.get()
    await relay.add(relay.users, user_id, user_group(user_id), socket)


async def user_unsubscribe(*, user_id: int, socket: Socket) -> None:
    relay = _relay.get()
    leaving = relay.discard(relay.users, user_id, user_group(user_id), socket)
    await layer_call("group_discard", "unsubscribing a user's socket", leaving)


async def _user_send(user_id: int, event: events.UserGroupEvent, lost: str) -> None:
    send = get_channel_layer().group_send(user_group(user_id), event)
    await layer_call("group_send", lost, send)


async def credentials_revoked_broadcast(
    *, user_id: int, reason: str, token_id: int | None = None, session_key: str | None = None
) -> None:
    """Tell a user's sockets that credentials no longer hold: those opened with
    this token, or this session, or (given neither) all of them, close.
    Best effort: the sweep closes any socket this misses (chat/delivery.py)."""
    event = events.credentials_revoked(
        user_id=user_id, reason=reason, token_id=token_id, session_key=session_key
    )
    await _user_send(user_id, event, "revocation not broadcast")


async def password_changed_broadcast(
    *, user_id: int, kept_from: str | None = None, kept_to: str | None = None
) -> None:
    """Tell a user's sockets that their password changed: those a session
    authenticated close, but session `kept_from`'s (renamed `kept_to`).
    Best effort: the sweep closes any this misses, by the session's hash."""
    event = events.password_changed(user_id=user_id, kept_from=kept_from, kept_to=kept_to)
    await _user_send(user_id, event, "password change not broadcast")


async def room_removed_broadcast(*, user_id: int, room: str, reason: protocol.LeftReason) -> None:
    """Take a user's sockets out of a room they may no longer read (`reason`:
    kick, ban, removed, or leave). Best effort: the sweep takes out any this misses."""
    event = events.room_removed(user_id=user_id, room=room, reason=reason)
    await _user_send(user_id, event, "room removal not broadcast")


async def room_access_broadcast(*, room: str, user_id: int | None = None) -> None:
    """Tell every process with sockets in the room that who may read or write
    it changed, for one user or (None) anyone: each checks its sockets there
    again, and those that may no longer read it leave (`left`, with why).
    Best effort: the sweep takes out any socket this misses (chat/delivery.py)."""
    event = events.room_access(room=room, user_id=user_id)
    send = get_channel_layer().group_send(room_group(room), event)
    await layer_call("group_send", "room access change not broadcast", send)


async def user_frame_broadcast(*, user_ids: set[int], frame: protocol.ServerFrame) -> None:
    """Send a frame to each of these users' sockets (`added`: they were made
    members of a room; `export`: an export of theirs moved on). Best effort:
    a socket that misses it sees the change on its next page load."""
    text = protocol.encode(frame)
    for user_id in user_ids:
        event = events.user_frame(user_id=user_id, text=text)
        await _user_send(user_id, event, f"{frame.type} not broadcast")

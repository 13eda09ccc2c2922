"""Groups on the channel layer: one per room, and one per signed-in user's
sockets. Group names are built here and nowhere else. Also this process's
Redis client, for the state shared beside the layer (presence, rate limits)."""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
import redis.exceptions
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from chat import events, metrics, protocol
from chat.perloop import PerLoop

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


# The channel of background jobs, read by `manage.py runworker chat-jobs`.
JOBS_CHANNEL = "chat-jobs"


def room_group(slug: str) -> str:
    """The channel-layer group of a room's sockets."""
    return f"room.{slug}"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's sockets."""
    return f"user.{user_id}"


class RoomRelay:
    """This process's subscription to rooms, and its live fan-out.

    The channel layer carries a room's events to each process once, on one
    channel of the process (the relay's), whatever number of its sockets are
    in the room; the relay hands each event to those sockets in-process. Per
    member this saves the layer's work a socket-per-group design pays (a
    queue, a decode, a task wake-up and a dispatch for every member).
    A socket is named by its channel name, and reached through `receiver_add`.
    """

    def __init__(self) -> None:
        self.channel: str | None = None
        self.rooms: dict[str, set[str]] = {}  # slug -> channels of this process's sockets
        self.receivers: dict[str, weakref.WeakMethod] = {}  # channel -> its room_event
        self.lock = asyncio.Lock()  # orders a room's group_add and group_discard
        self.reader: asyncio.Task | None = None

    async def subscribe(self, slug: str, channel: str) -> None:
        async with self.lock:
            layer = get_channel_layer()
            if self.channel is None:
                self.channel = await layer.new_channel()
            if slug not in self.rooms:
                await layer.group_add(room_group(slug), self.channel)
                self.rooms[slug] = set()
            self.rooms[slug].add(channel)
            if self.reader is None or self.reader.done():
                self.reader = asyncio.get_running_loop().create_task(self._read())

    async def unsubscribe(self, slug: str, channel: str) -> None:
        async with self.lock:
            members = self.rooms.get(slug)
            if members is None:
                return
            members.discard(channel)
            if not members:
                del self.rooms[slug]
                await get_channel_layer().group_discard(room_group(slug), self.channel)

    async def _read(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                event = await layer.receive(self.channel)
            except LAYER_ERRORS as exc:
                metrics.LAYER_FAILURES.labels("receive").inc()
                logger.warning("room relay: channel layer unavailable (%s)", exc)
                await asyncio.sleep(1)  # the sweep fills what this loses
                continue
            for channel in list(self.rooms.get(event["room"], ())):
                method = self.receivers.get(channel)
                receive = method() if method is not None else None
                if receive is None:
                    continue
                try:
                    await receive(event)
                except Exception:
                    logger.exception("delivering a room event to %s failed", channel)


_relay = PerLoop(RoomRelay)


def receiver_add(channel: str, receive: Callable[[events.RoomGroupEvent], Awaitable[None]]) -> None:
    """Route the room events of the socket on `channel` to the bound method
    `receive(event)` (held weakly: a socket gone is skipped)."""
    _relay.get().receivers[channel] = weakref.WeakMethod(receive)


def receiver_remove(channel: str) -> None:
    _relay.get().receivers.pop(channel, None)


async def room_subscribe(*, slug: str, channel: str) -> None:
    """Have the socket on `channel` receive the room's events, or raise
    `unavailable` (and leave no trace)."""
    try:
        await _relay.get().subscribe(slug, channel)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_add").inc()
        await room_unsubscribe(slug=slug, channel=channel)
        logger.warning("cannot join %s: channel layer unavailable (%s)", slug, exc)
        raise protocol.ChatError(
            protocol.ErrorCode.UNAVAILABLE, "live delivery is unavailable; retry", retry_after=1.0
        ) from None


async def room_unsubscribe(*, slug: str, channel: str) -> None:
    """Stop the socket's room events. Best effort: with the layer away, the
    local membership is dropped and the subscription dies with Redis."""
    await layer_call("group_discard", f"leaving {slug}", _relay.get().unsubscribe(slug, channel))


async def room_broadcast(
    *,
    room: str,
    frame: protocol.ServerFrame,
    seq: int | None = None,
    exclude: str | None = None,
) -> bool:
    """Send a frame to every socket in the room, encoded once for all of them.

    `seq` lets each socket drop a message it already holds; `exclude` names a
    channel that should not get it (the typist, for typing). Call only after
    the write it announces has committed. Returns False when the layer is away:
    the write stands, and sockets get a stored message from the sweep instead.
    """
    event = events.room_event(
        room=room, frame=frame.type, text=protocol.encode(frame), seq=seq, exclude=exclude
    )
    send = get_channel_layer().group_send(room_group(room), event)
    return await layer_call("group_send", f"broadcast to {room} lost", send)


async def user_subscribe(*, user_id: int, channel: str) -> None:
    """Add a socket to its user's group. Raises the layer's error: the caller
    refuses the socket rather than keep one it could not reach."""
    await get_channel_layer().group_add(user_group(user_id), channel)


async def user_unsubscribe(*, user_id: int, channel: str) -> None:
    discard = get_channel_layer().group_discard(user_group(user_id), channel)
    await layer_call("group_discard", "unsubscribing a user's socket", discard)


async def _user_send(user_id: int, event: events.UserGroupEvent, lost: str) -> None:
    send = get_channel_layer().group_send(user_group(user_id), event)
    await layer_call("group_send", lost, send)


async def credentials_revoked_broadcast(
    *, user_id: int, reason: str, token_id: int | None = None, session_key: str | None = None
) -> None:
    """Tell a user's sockets that credentials no longer hold: those opened with
    this token, or this session, or (given neither) all of them, close.
    Best effort: the sweep closes any socket this misses (chat/delivery.py)."""
    event = events.credentials_revoked(reason=reason, token_id=token_id, session_key=session_key)
    await _user_send(user_id, event, "revocation not broadcast")


async def room_removed_broadcast(*, user_id: int, room: str, reason: protocol.LeftReason) -> None:
    """Take a user's sockets out of a room they may no longer read (`reason`:
    kick, ban, removed, or leave). Best effort: the sweep takes out any this misses."""
    event = events.room_removed(room=room, reason=reason)
    await _user_send(user_id, event, "room removal not broadcast")


async def room_access_broadcast(*, room: str, private: bool) -> None:
    """Tell every socket in the room, on every process, that who may read it
    changed: with `private`, guests may no longer, and their sockets leave it
    (`left`, reason "private"). Members still may. Best effort: the sweep
    takes out any socket this misses (chat/delivery.py)."""
    event = events.room_access(room=room, guests=not private)
    send = get_channel_layer().group_send(room_group(room), event)
    await layer_call("group_send", "room access change not broadcast", send)


async def room_added_broadcast(*, user_ids: set[int], frame: protocol.AddedEvent) -> None:
    """Tell users' sockets they were made members of a room (`added`). Best
    effort: a socket that misses it sees the room on its next page load."""
    event = events.room_added(text=protocol.encode(frame))
    for user_id in user_ids:
        await _user_send(user_id, event, "room addition not broadcast")


async def job_enqueue(job: events.Job) -> None:
    """Hand a job to the worker (chat/jobs.py). Best effort: a job lost with
    the layer is not retried (a link preview, say, is simply missing)."""
    send = get_channel_layer().send(JOBS_CHANNEL, job)
    await layer_call("send", f"job {job['type']} not enqueued", send)

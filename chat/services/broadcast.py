"""Publishing on the channel layer, after a write commits: to a room's group,
or to a signed-in user's sockets' group. Group names are built here and
nowhere else; each process's relay (chat/realtime/relay.py) subscribes to
them. Also this process's Redis client, for the state shared beside the
layer (presence, rate limits)."""

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis.asyncio
import redis.exceptions
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
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


class Publisher:
    """This event loop's publishes to groups, sent together.

    channels-redis publishes one message at a time under a lock, each waiting
    for the round trip of the one before: a busy process's broadcasts queue
    behind each other. Here the publishes asked for while a round trip is
    under way go together in the next, one Redis pipeline, in the order they
    were asked for, to the channel channels-redis subscribes each group to
    and in its wire format (its `serialize`): the relays read them as they
    read its own. On another layer (the in-memory one), its own `group_send`.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Any, str, bytes, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def publish(self, group: str, event: dict) -> None:
        """Publish the event to the group; raises the layer's error, with Redis away."""
        layer = get_channel_layer()
        if not isinstance(layer, RedisPubSubChannelLayer):
            await layer.group_send(group, event)
            return
        channel = layer._get_group_channel_name(group)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((layer._get_shard(channel), channel, layer.serialize(event), future))
        if self.task is None:
            self.task = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                shards = {id(shard): shard for shard, *_ in batch}
                failed: dict[int, BaseException] = {}
                for key, shard in shards.items():
                    try:
                        shard._ensure_redis()
                        async with shard._redis.pipeline(transaction=False) as pipe:
                            for on, channel, data, _ in batch:
                                if on is shard:
                                    pipe.publish(channel, data)
                            await pipe.execute()
                    except LAYER_ERRORS as exc:
                        failed[key] = exc
                for shard, _, _, future in batch:
                    if future.done():
                        continue
                    if (error := failed.get(id(shard))) is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(None)
        finally:
            self.task = None


_publisher = PerLoop(Publisher)


# This process's name on the room events it publishes. It hands each one to
# its own sockets at once (`local_delivery`), without waiting for Redis to
# bring it back, and its relay drops the copy that comes back.
ORIGIN = secrets.token_hex(8)
_local: Callable[[events.RoomEvent], None] | None = None


def local_delivery(deliver: Callable[[events.RoomEvent], None]) -> None:
    """Have this process's room events delivered to its own sockets by
    `deliver` as they are published (the relay registers its fan-out: the
    services publish, and do not know sockets)."""
    global _local
    _local = deliver


def room_group(slug: str) -> str:
    """The channel-layer group of a room's sockets."""
    return f"room.{slug}"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's sockets."""
    return f"user.{user_id}"


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
        origin=ORIGIN,
    )
    if _local is not None:
        _local(event)
    send = _publisher.get().publish(room_group(room), dict(event))
    return await layer_call("group_send", f"broadcast to {room} lost", send)


async def _user_send(user_id: int, event: events.UserGroupEvent, lost: str) -> None:
    send = _publisher.get().publish(user_group(user_id), dict(event))
    await layer_call("group_send", lost, send)


async def credentials_revoked_broadcast(
    *, user_id: int, reason: str, token_id: int | None = None, session_key: str | None = None
) -> None:
    """Tell a user's sockets that credentials no longer hold: those opened with
    this token, or this session, or (given neither) all of them, close.
    Best effort: the sweep closes any socket this misses (chat/realtime/sweep.py)."""
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
    Best effort: the sweep takes out any socket this misses (chat/realtime/sweep.py)."""
    event = events.room_access(room=room, user_id=user_id)
    send = _publisher.get().publish(room_group(room), dict(event))
    await layer_call("group_send", "room access change not broadcast", send)


async def user_frame_broadcast(*, user_ids: set[int], frame: protocol.ServerFrame) -> None:
    """Send a frame to each of these users' sockets (`added`: they were made
    members of a room; `export`: an export of theirs moved on). Best effort:
    a socket that misses it sees the change on its next page load."""
    text = protocol.encode(frame)
    for user_id in user_ids:
        event = events.user_frame(user_id=user_id, text=text)
        await _user_send(user_id, event, f"{frame.type} not broadcast")

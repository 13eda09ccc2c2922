"""Groups on the channel layer: one per room, and one per signed-in user's
sockets. Group names are built here and nowhere else. Also this process's
Redis client, for the state shared beside the layer (presence, rate limits)."""

import asyncio
import logging
import time
import weakref

import redis.asyncio
import redis.exceptions
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from chat import metrics, protocol

logger = logging.getLogger(__name__)

# What a channel layer raises when its backend (Redis) is away or full.
LAYER_ERRORS = (redis.exceptions.RedisError, OSError, ChannelFull)


_redis: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = (
    weakref.WeakKeyDictionary()
)


def redis_client() -> redis.asyncio.Redis | None:
    """This event loop's Redis client, or None without REDIS_URL."""
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    if loop not in _redis:
        _redis[loop] = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    return _redis[loop]


def room_group(slug: str) -> str:
    """The channel-layer group of a room's sockets."""
    return f"room.{slug}"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's sockets."""
    return f"user.{user_id}"


async def room_subscribe(*, slug: str, channel: str) -> None:
    """Add a socket to the room's group, or raise `unavailable` (and leave no trace)."""
    layer = get_channel_layer()
    try:
        await layer.group_add(room_group(slug), channel)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_add").inc()
        await room_unsubscribe(slug=slug, channel=channel)
        logger.warning("cannot join %s: channel layer unavailable (%s)", slug, exc)
        raise protocol.ChatError(
            protocol.ErrorCode.UNAVAILABLE, "live delivery is unavailable; retry", retry_after=1.0
        ) from None


async def room_unsubscribe(*, slug: str, channel: str) -> None:
    """Remove a socket from the room's group. Best effort: with the layer away,
    the local membership is dropped and the subscription dies with Redis."""
    try:
        await get_channel_layer().group_discard(room_group(slug), channel)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_discard").inc()
        logger.warning("leaving %s: channel layer unavailable (%s)", slug, exc)


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
    event = {
        "type": "room.event",
        "room": room,
        "seq": seq,
        "exclude": exclude,
        "frame": frame.type,
        "text": protocol.encode(frame),
        "committed": time.time(),  # for the latency metric: wall clock, shared by the hosts
    }
    try:
        await get_channel_layer().group_send(room_group(room), event)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_send").inc()
        logger.warning("broadcast to %s lost: channel layer unavailable (%s)", room, exc)
        return False
    return True


async def user_subscribe(*, user_id: int, channel: str) -> None:
    """Add a socket to its user's group. Raises the layer's error: the caller
    refuses the socket rather than keep one it could not reach."""
    await get_channel_layer().group_add(user_group(user_id), channel)


async def user_unsubscribe(*, user_id: int, channel: str) -> None:
    try:
        await get_channel_layer().group_discard(user_group(user_id), channel)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_discard").inc()
        logger.warning("unsubscribing a user's socket: channel layer unavailable (%s)", exc)


async def credentials_revoked_broadcast(
    *, user_id: int, reason: str, token_id: int | None = None, session_key: str | None = None
) -> None:
    """Tell a user's sockets that credentials no longer hold: those opened with
    this token, or this session, or (given neither) all of them, close.
    Best effort: the sweep closes any socket this misses (chat/delivery.py)."""
    event = {
        "type": "credentials.revoked",
        "token_id": token_id,
        "session_key": session_key,
        "reason": reason,
    }
    try:
        await get_channel_layer().group_send(user_group(user_id), event)
    except LAYER_ERRORS as exc:
        metrics.LAYER_FAILURES.labels("group_send").inc()
        logger.warning("revocation not broadcast: channel layer unavailable (%s)", exc)

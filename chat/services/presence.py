"""Who is in which room, true across processes, and typing notices.

Each socket in a room is an entry with an expiry. The process that holds the
socket refreshes its entries every sweep (chat/delivery.py); a process that is
killed stops refreshing, and its entries expire after CHAT_PRESENCE_TTL
seconds, when any process reports them as `left`. With REDIS_URL the entries
live in a Redis sorted set per room (score = expiry time); without it, in this
process's memory.
"""

import asyncio
import logging
import time
from collections import defaultdict
from typing import cast

from django.conf import settings

from chat import protocol
from chat.access import room_refusal
from chat.actor import Actor
from chat.perloop import PerLoop
from chat.selectors.rooms import room_get_readable
from chat.services.broadcast import LAYER_ERRORS, redis_client, room_broadcast

logger = logging.getLogger(__name__)
SEP = "\x1f"

# Without Redis: per room, entry -> expiry. A room's dict goes when it empties,
# so a flood of joins to new rooms leaves nothing behind.
_memory: dict[str, dict[str, float]] = defaultdict(dict)

COALESCE_SECONDS = 0.2
_sending: set[asyncio.Task] = set()
# Per event loop, per room: the changes of who is online not yet broadcast.
_changes: PerLoop[dict[str, dict]] = PerLoop(dict)


def _entry(*, channel: str, actor: Actor) -> str:
    return SEP.join((channel, "1" if actor.guest else "0", actor.name))


def _who(entries: list[str]) -> set[tuple[str, bool]]:
    """The distinct (name, guest) of a room's entries."""
    who = set()
    for entry in entries:
        _, guest, name = entry.split(SEP, 2)
        who.add((name, guest == "1"))
    return who


def _authors(who: set[tuple[str, bool]]) -> list[protocol.Author]:
    # Built from entries this module wrote: no need to validate them again
    # (a join to a room of N pays this N times).
    return [protocol.Author.model_construct(name=n, guest=g) for n, g in sorted(who)]


def _key(slug: str) -> str:
    return f"{settings.CHANNEL_LAYER_PREFIX}:presence:{slug}"


async def _store_add(slug: str, entries: list[str]) -> None:
    expires = time.time() + settings.CHAT_PRESENCE_TTL
    if (client := redis_client()) is None:
        _memory[slug].update(dict.fromkeys(entries, expires))
    elif entries:
        # The key outlives its last refresh by one TTL: idle rooms leave nothing behind.
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(_key(slug), dict.fromkeys(entries, expires))
            pipe.expire(_key(slug), settings.CHAT_PRESENCE_TTL)
            await pipe.execute()


async def _store_remove(slug: str, entry: str) -> None:
    if (client := redis_client()) is None:
        room = _memory.get(slug, {})
        room.pop(entry, None)
        if not room:
            _memory.pop(slug, None)
    else:
        await client.zrem(_key(slug), entry)


async def _store_online(slug: str) -> list[str]:
    now = time.time()
    if (client := redis_client()) is None:
        return [entry for entry, expires in _memory.get(slug, {}).items() if expires > now]
    entries = cast(list[bytes], await client.zrangebyscore(_key(slug), now, "+inf"))
    return [entry.decode() for entry in entries]


async def _store_pop_expired(slug: str) -> list[str]:
    """Remove and return the entries whose expiry has passed (once, across processes)."""
    now = time.time()
    if (client := redis_client()) is None:
        room = _memory.get(slug, {})
        expired = [entry for entry, expires in room.items() if expires <= now]
        for entry in expired:
            del room[entry]
        if not room:
            _memory.pop(slug, None)
        return expired
    entries = cast(list[bytes], await client.zrangebyscore(_key(slug), "-inf", now))
    # ZREM answers per entry: only the process that removed it reports it.
    return [entry.decode() for entry in entries if await client.zrem(_key(slug), entry)]


async def presence_enter(*, slug: str, actor: Actor, channel: str) -> protocol.PresenceEvent:
    """Mark the socket present; tell the room if the actor just came online.
    Returns the room's full presence for the joining socket."""
    entry = _entry(channel=channel, actor=actor)
    try:
        others = await _store_online(slug)
        await _store_add(slug, [entry])
    except LAYER_ERRORS as exc:
        logger.warning("presence in %s unavailable (%s)", slug, exc)
        return protocol.PresenceEvent(room=slug, online=[actor.author])
    who = _who(others)
    if (actor.name, actor.guest) not in who:
        _announce(slug, actor.author, online=True)
    return protocol.PresenceEvent(room=slug, online=_authors(who | {(actor.name, actor.guest)}))


async def presence_leave(*, slug: str, actor: Actor, channel: str) -> None:
    """Drop the socket's entry; tell the room if that was the actor's last socket."""
    try:
        await _store_remove(slug, _entry(channel=channel, actor=actor))
        still_online = (actor.name, actor.guest) in _who(await _store_online(slug))
    except LAYER_ERRORS as exc:
        logger.warning("presence in %s unavailable (%s)", slug, exc)
        return
    if not still_online:
        _announce(slug, actor.author, online=False)


def _announce(slug: str, author: protocol.Author, *, online: bool) -> None:
    """Queue a change of who is online in a room. This process broadcasts a
    room's changes together, once per COALESCE_SECONDS: each join to a room of
    N sockets would otherwise send N frames, and a join storm N squared."""
    loop = asyncio.get_running_loop()
    rooms = _changes.get()
    if slug not in rooms:
        rooms[slug] = {}
        loop.call_later(COALESCE_SECONDS, _changes_send, slug)
    rooms[slug][(author.name, author.guest)] = (author, online)  # the last change wins


def _changes_send(slug: str) -> None:
    loop = asyncio.get_running_loop()
    changes = _changes.get().pop(slug).values()
    joined = [author for author, online in changes if online]
    left = [author for author, online in changes if not online]
    frame = protocol.PresenceEvent(room=slug, joined=joined or None, left=left or None)
    task = loop.create_task(room_broadcast(room=slug, frame=frame))
    _sending.add(task)  # held until done: the loop keeps only a weak reference
    task.add_done_callback(_sending.discard)


async def presence_refresh(*, present: dict[str, list[tuple[str, Actor]]]) -> None:
    """Extend this process's entries, and report entries other processes let expire.

    `present` maps each room with sockets here to their (channel, actor) pairs.
    """
    for slug, sockets in present.items():
        await _store_add(slug, [_entry(channel=c, actor=a) for c, a in sockets])
        expired = await _store_pop_expired(slug)
        gone = _authors(_who(expired) - _who(await _store_online(slug)))
        if gone:
            await room_broadcast(room=slug, frame=protocol.PresenceEvent(room=slug, left=gone))


async def typing_notify(*, actor: Actor, slug: str, channel: str) -> None:
    """Tell the room's other sockets that the actor is typing (if a guest,
    where guests may write)."""
    room = await room_get_readable(slug=slug, actor=actor)
    if refusal := room_refusal(room=room, slug=slug, member=True, guest_writing=actor.guest):
        raise refusal
    frame = protocol.TypingEvent(room=slug, user=actor.author)
    await room_broadcast(room=slug, frame=frame, exclude=channel)

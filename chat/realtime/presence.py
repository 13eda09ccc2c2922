"""Who is in which room, true across processes, and typing notices.

Each socket in a room is an entry with an expiry; each person (a name, and
whether a guest) is online while they have an entry. The process that holds
a socket refreshes its entries every sweep (chat/realtime/sweep.py); a process
that is killed stops refreshing, and its entries expire after
CHAT_PRESENCE_TTL seconds, when any process reports them as `left`.

With REDIS_URL each room is three Redis keys, changed only by the scripts
below (one round trip for a join or a leave, whatever the room's size): the
entries (a sorted set by expiry), each person's number of entries (a hash)
and the people online (a sorted set, by name). Without it, the same in this
process's memory.

A join is told the number of people online and the first PRESENCE_NAMES of
them by name, never the whole list: a room of 10,000 fits in one frame.
Changes go out as diffs (`joined`, `left`, with the new `count`), coalesced
per room for COALESCE_SECONDS, and in frames of at most PRESENCE_NAMES names.
"""

import asyncio
import logging
import time
from collections import defaultdict
from typing import cast

from django.conf import settings

from chat import protocol
from chat.actor import Actor
from chat.perloop import PerLoop
from chat.selectors.rooms import room_get_writable
from chat.services.broadcast import LAYER_ERRORS, redis_client, room_broadcast

logger = logging.getLogger(__name__)
SEP = "\x1f"
PRESENCE_NAMES = protocol.PRESENCE_NAMES
COALESCE_SECONDS = 0.2
STORM_SECONDS = 2.0
# A socket's typing notices in a room go out at most this often (the page
# sends one every 3 s while typing).
TYPING_EVERY = 3.0
_sending: set[asyncio.Task] = set()
# Per event loop, per room: the changes of who is online not yet broadcast.
_changes: PerLoop[dict[str, dict]] = PerLoop(dict)
# Per event loop, room -> until when its presence frames wait STORM_SECONDS.
_storming: PerLoop[dict[str, float]] = PerLoop(dict)
# Per event loop, (socket, room) -> when its last typing notice went out.
_typed: PerLoop[dict[tuple[str, str], float]] = PerLoop(dict)

# KEYS: entries, counts, people. ARGV: expiry, ttl, names, then (entry,
# person) pairs. Adds the entries; returns {people, first names, the people
# who just came online}: one round trip for all of a room's joins at once.
_ENTER = """
local came = {}
for i = 4, #ARGV, 2 do
  if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    if redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1) == 1 then
      redis.call('ZADD', KEYS[3], 0, ARGV[i + 1])
      came[#came + 1] = ARGV[i + 1]
    end
  end
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return {redis.call('ZCARD', KEYS[3]), redis.call('ZRANGE', KEYS[3], 0, ARGV[3] - 1), came}
"""
# Removes entries (ARGV, after the first: those given, or with ARGV[1] = "expired",
# those expired by Redis' clock); returns the people this took offline.
_LEAVE = """
local entries = {}
if ARGV[1] == 'expired' then
  local time = redis.call('TIME')
  entries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(time[1]) + time[2] / 1e6)
else
  for i = 2, #ARGV do entries[#entries + 1] = ARGV[i] end
end
local gone = {}
for _, entry in ipairs(entries) do
  if redis.call('ZREM', KEYS[1], entry) == 1 then
    local person = string.sub(entry, string.find(entry, '\\31') + 1)
    if redis.call('HINCRBY', KEYS[2], person, -1) <= 0 then
      redis.call('HDEL', KEYS[2], person)
      redis.call('ZREM', KEYS[3], person)
      gone[#gone + 1] = person
    end
  end
end
return gone
"""
# Extends entries ARGV[3..] to expiry ARGV[1] (ttl ARGV[2]), counting any
# another process took for expired meanwhile.
_REFRESH = """
for i = 3, #ARGV do
  if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    local person = string.sub(ARGV[i], string.find(ARGV[i], '\\31') + 1)
    if redis.call('HINCRBY', KEYS[2], person, 1) == 1 then
      redis.call('ZADD', KEYS[3], 0, person)
    end
  end
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return redis.call('ZCARD', KEYS[3])
"""


def _person(actor: Actor) -> str:
    return SEP.join(("1" if actor.guest else "0", actor.name))


def _entry(*, channel: str, actor: Actor) -> str:
    return SEP.join((channel, _person(actor)))


def _authors(people: list[str]) -> list[protocol.Author]:
    # Built from entries this module wrote: no need to validate them again.
    return [
        protocol.Author.model_construct(name=name, guest=guest == "1")
        for guest, name in (person.split(SEP, 1) for person in people)
    ]


class _Memory:
    """A room's presence in this process (without Redis)."""

    def __init__(self) -> None:
        self.entries: dict[str, float] = {}
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, entry: str, expires: float) -> bool:
        """Add or extend an entry; True if its person just came online."""
        new = entry not in self.entries
        self.entries[entry] = expires
        if not new:
            return False
        person = entry.split(SEP, 1)[1]
        self.counts[person] += 1
        return self.counts[person] == 1

    def remove(self, entries: list[str]) -> list[str]:
        gone = []
        for entry in entries:
            if self.entries.pop(entry, None) is None:
                continue
            person = entry.split(SEP, 1)[1]
            self.counts[person] -= 1
            if self.counts[person] <= 0:
                del self.counts[person]
                gone.append(person)
        return gone

    def people(self) -> list[str]:
        return sorted(self.counts)


# Without Redis: per room. A room's state goes when it empties, so a flood of
# joins to new rooms leaves nothing behind.
_memory: dict[str, _Memory] = {}


def _keys(slug: str) -> list[str]:
    key = f"{settings.CHANNEL_LAYER_PREFIX}:presence:{slug}"
    return [key, f"{key}:n", f"{key}:who"]


def _memory_drop_empty(slug: str) -> None:
    if slug in _memory and not _memory[slug].entries:
        del _memory[slug]


async def presence_enter(*, slug: str, entrants: list[tuple[Actor, str]]) -> protocol.PresenceEvent:
    """Mark these sockets (actor, channel) present in the room, at once; tell
    the room of those who just came online. Returns the room's presence for
    the joining sockets: how many are online, and the first PRESENCE_NAMES."""
    ttl = settings.CHAT_PRESENCE_TTL
    pairs = [(_entry(channel=channel, actor=actor), _person(actor)) for actor, channel in entrants]
    client = redis_client()
    try:
        if client is None:
            room = _memory.setdefault(slug, _Memory())
            came = [person for entry, person in pairs if room.add(entry, time.time() + ttl)]
            people = room.people()
            count, names = len(people), people[:PRESENCE_NAMES]
        else:
            args = [part for pair in pairs for part in pair]
            count, raw, arrived = await client.eval(
                _ENTER, 3, *_keys(slug), time.time() + ttl, ttl, PRESENCE_NAMES, *args
            )
            names = [name.decode() for name in cast(list[bytes], raw)]
            came = [person.decode() for person in cast(list[bytes], arrived)]
    except LAYER_ERRORS as exc:
        logger.warning("presence in %s unavailable (%s)", slug, exc)
        authors = list({actor.author: None for actor, _ in entrants})
        return protocol.PresenceEvent(room=slug, online=authors, count=len(authors))
    for author in _authors(came):
        _announce(slug, author, online=True)
    return protocol.PresenceEvent(room=slug, online=_authors(names), count=count)


async def presence_leave(*, slug: str, actor: Actor, channel: str) -> None:
    """Drop the socket's entry; tell the room if that was the actor's last socket."""
    entry = _entry(channel=channel, actor=actor)
    try:
        gone = await _remove(slug, [entry])
    except LAYER_ERRORS as exc:
        logger.warning("presence in %s unavailable (%s)", slug, exc)
        return
    if gone:
        _announce(slug, actor.author, online=False)


async def _remove(slug: str, entries: list[str] | None) -> list[str]:
    """Remove these entries (None: the expired ones); the people now offline."""
    client = redis_client()
    if client is None:
        room = _memory.get(slug)
        if room is None:
            return []
        if entries is None:
            now = time.time()
            entries = [entry for entry, expires in room.entries.items() if expires <= now]
        gone = room.remove(entries)
        _memory_drop_empty(slug)
        return gone
    args = ["expired"] if entries is None else ["given", *entries]
    gone = await client.eval(_LEAVE, 3, *_keys(slug), *args)
    return [person.decode() for person in cast(list[bytes], gone)]


def _announce(slug: str, author: protocol.Author, *, online: bool) -> None:
    """Queue a change of who is online in a room. This process broadcasts a
    room's changes together, once per COALESCE_SECONDS: each join to a room of
    N sockets would otherwise send N frames, and a join storm N squared. In a
    storm (a tick of more than PRESENCE_NAMES changes) the room's next frame
    waits STORM_SECONDS: each is written to every socket in the room."""
    loop = asyncio.get_running_loop()
    rooms = _changes.get()
    if slug not in rooms:
        rooms[slug] = {}
        quiet = _storming.get().get(slug, 0.0) - loop.time()
        loop.call_later(max(COALESCE_SECONDS, quiet), _changes_send, slug)
    key = (author.name, author.guest)
    if key in rooms[slug] and rooms[slug][key][1] != online:
        del rooms[slug][key]  # came and went (or went and came back): no change to tell
    else:
        rooms[slug][key] = (author, online)


def _changes_send(slug: str) -> None:
    changes = list(_changes.get().pop(slug).values())
    storming = _storming.get()
    if len(changes) > PRESENCE_NAMES:
        storming[slug] = asyncio.get_running_loop().time() + STORM_SECONDS
    else:
        storming.pop(slug, None)
    task = asyncio.get_running_loop().create_task(_diffs_send(slug, changes))
    _sending.add(task)  # held until done: the loop keeps only a weak reference
    task.add_done_callback(_sending.discard)


async def _diffs_send(slug: str, changes: list[tuple[protocol.Author, bool]]) -> None:
    """Broadcast changes of who is online, in one frame: the diff (`joined`,
    `left`) with the number now online, or past PRESENCE_NAMES changes (a
    storm of joins), who is online now as after a join: `online`, the first
    PRESENCE_NAMES, and `count`. One frame per room per tick, whatever the
    number of changes: else a storm of N joins to a room would cost N² writes."""
    many = len(changes) > PRESENCE_NAMES
    try:
        count, names = await _online(slug, names=many)
    except LAYER_ERRORS as exc:
        logger.warning("presence in %s unavailable (%s)", slug, exc)
        return
    if many:
        frame = protocol.PresenceEvent(room=slug, online=_authors(names), count=count)
    else:
        joined = [author for author, online in changes if online]
        left = [author for author, online in changes if not online]
        frame = protocol.PresenceEvent(
            room=slug, joined=joined or None, left=left or None, count=count
        )
    await room_broadcast(room=slug, frame=frame)


async def _online(slug: str, *, names: bool) -> tuple[int, list[str]]:
    """How many people are online in the room, and (with `names`) the first
    PRESENCE_NAMES of them."""
    if (client := redis_client()) is None:
        room = _memory.get(slug)
        people = room.people() if room is not None else []
        return len(people), people[:PRESENCE_NAMES] if names else []
    key = _keys(slug)[2]
    if not names:
        return int(await client.zcard(key)), []
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(key)
        pipe.zrange(key, 0, PRESENCE_NAMES - 1)
        count, raw = await pipe.execute()
    return int(count), [name.decode() for name in raw]


async def presence_refresh(*, present: dict[str, list[tuple[str, Actor]]]) -> None:
    """Extend this process's entries, and report entries other processes let expire.

    `present` maps each room with sockets here to their (channel, actor) pairs.
    """
    ttl = settings.CHAT_PRESENCE_TTL
    client = redis_client()
    for slug, sockets in present.items():
        entries = [_entry(channel=c, actor=a) for c, a in sockets]
        if client is None:
            room = _memory.setdefault(slug, _Memory())
            for entry in entries:
                room.add(entry, time.time() + ttl)
        else:
            await client.eval(_REFRESH, 3, *_keys(slug), time.time() + ttl, ttl, *entries)
        if gone := await _remove(slug, None):
            await _diffs_send(slug, [(author, False) for author in _authors(gone)])


async def typing_notify(*, actor: Actor, slug: str, channel: str) -> None:
    """Tell the room's other sockets that the actor is typing, if they may
    write there (not muted; a guest, where guests may write): at most once
    per TYPING_EVERY seconds per socket and room, the rest dropped silently."""
    typed, now = _typed.get(), time.monotonic()
    if now - typed.get((channel, slug), -TYPING_EVERY) < TYPING_EVERY:
        return
    if len(typed) >= 10_000:  # bounded, whatever the number of sockets and rooms
        for key in [key for key, at in typed.items() if now - at >= TYPING_EVERY]:
            del typed[key]
    typed[(channel, slug)] = now  # a refused one counts too: refusals are rated alike
    await room_get_writable(slug=slug, actor=actor)
    frame = protocol.TypingEvent(room=slug, user=actor.author)
    await room_broadcast(room=slug, frame=frame, exclude=channel)

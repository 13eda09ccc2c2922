"""Joining and leaving a room with a socket: the access check, the
subscription, the `joined` page and presence.

Joins are served together, as the group commit serves sends: those that
arrive while a batch is being served wait, and go in the next one. A batch
subscribes its sockets first (whatever commits after that reaches them
live), then decides each join from what this process knows of its room
(chat/realtime/known.py), reading from the database only what it does not
know yet, in one query of each kind for the whole batch; records the
memberships its signed-in joiners of public rooms lack (one transaction);
takes each room's page from the frame cache when it holds it, and encodes
each room's `joined` and `presence` once for all its joiners of the
moment; and marks them all present with one call per room. In the steady
state (a process that knows its rooms, their joiners back after a restart)
a join reads nothing from the database.
"""

import asyncio
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from chat import metrics, protocol
from chat.access import room_refusal
from chat.actor import Actor
from chat.perloop import PerLoop
from chat.protocol import LeftReason, RoomKind
from chat.realtime.known import Ban, Person, RoomKnown
from chat.realtime.outlet import Frame
from chat.realtime.presence import presence_enter, presence_leave
from chat.realtime.relay import room_frames, room_known, room_subscribe, room_unsubscribe
from chat.realtime.sockets import Socket
from chat.selectors.messages import message_frames, messages_page
from chat.selectors.rooms import rooms_join_facts
from chat.services.rooms import memberships_record, rooms_site_make


@dataclass(frozen=True, slots=True)
class Joined:
    """A join's answer: its `joined` and `presence` frames, framed once for
    every joiner of the room at that moment, and the room's last_seq."""

    joined: Frame
    presence: Frame
    last_seq: int


@dataclass(slots=True)
class _Join:
    actor: Actor
    slug: str
    since: int | None
    socket: Socket
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Joins:
    """This event loop's joins: those that arrive while a batch is served go
    together in the next one."""

    MAX_BATCH = 1000

    def __init__(self) -> None:
        self.waiting: list[_Join] = []
        self.task: asyncio.Task | None = None

    async def join(self, join: _Join) -> Joined:
        self.waiting.append(join)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._serve())
        return await join.future

    async def _serve(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[: self.MAX_BATCH]
                del self.waiting[: self.MAX_BATCH]
                try:
                    await _batch_join(batch)
                except BaseException as exc:
                    for join in batch:
                        if not join.future.done():
                            join.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self.task = None


_joins = PerLoop(Joins)


async def room_join(*, actor: Actor, slug: str, since: int | None, socket: Socket) -> Joined:
    """Join a room: check access, subscribe the socket, read what it lacks, mark it present.

    Joining never makes a room (`room_create` does), but one of the site's
    rooms (CHAT_DEFAULT_ROOMS) if it is missing: a room that does not exist
    and a private one the actor is not in answer the same `not_found`.
    Subscribing before reading means no message falls between the two: any
    message with seq > last_seq reaches the socket after the subscription.
    """
    return await _joins.get().join(_Join(actor=actor, slug=slug, since=since, socket=socket))


async def _batch_join(batch: list[_Join]) -> None:
    subscribed = []
    for join in batch:
        try:
            await room_subscribe(slug=join.slug, socket=join.socket)
            subscribed.append(join)
        except protocol.ChatError as error:
            join.future.set_exception(error)
    try:
        await _facts_learn(subscribed)
        admitted = []
        for join in subscribed:
            if refusal := _refusal(join):
                join.future.set_exception(refusal)
            else:
                admitted.append(join)
        await _memberships_record(admitted)
        await _answer(admitted)
    except Exception as exc:
        for join in subscribed:
            if not join.future.done():
                join.future.set_exception(exc)
    finally:
        for join in subscribed:
            # A join that failed leaves the relay, unless the socket was in the room already.
            failed = join.future.done() and join.future.exception() is not None
            if failed and join.slug not in join.socket.rooms:
                await room_unsubscribe(slug=join.slug, socket=join.socket)


async def _facts_learn(batch: list[_Join]) -> None:
    """Read from the database what this process does not know yet of these
    joins' rooms and joiners, in one query of each kind."""
    slugs, users = set(), set()
    for join in batch:
        known = room_known(join.slug)
        if known is None:
            slugs.add(join.slug)
        if join.actor.user_id is not None and (
            known is None or join.actor.user_id not in known.people
        ):
            slugs.add(join.slug)
            users.add(join.actor.user_id)
    if not slugs:
        return
    await rooms_site_make(slugs=slugs)
    facts = await rooms_join_facts(slugs=slugs, users=users)
    for slug in slugs:
        room = facts.rooms.get(slug)
        if room is None or (known := room_known(slug, make=room)) is None:
            continue  # missing (refused below), or left meanwhile
        for user_id in users:
            ban = facts.bans.get((room.pk, user_id))
            known.people.setdefault(
                user_id,
                Person(
                    role=facts.roles.get((room.pk, user_id)),
                    ban=Ban(kind="ban", until=ban.until, reason=ban.reason) if ban else None,
                ),
            )
        if room.kind == RoomKind.DM:
            known.members = facts.members.get(room.pk, [])


def _refusal(join: _Join) -> protocol.ChatError | None:
    """Why a join may not go on, from what this process knows."""
    known = room_known(join.slug)
    person = known.people.get(join.actor.user_id or 0) if known else None
    ban = person.ban if person and person.ban and person.ban.in_force(timezone.now()) else None
    return room_refusal(
        room=known,
        slug=join.slug,
        member=person is not None and person.role is not None,
        sanction=ban,
    )


async def _memberships_record(batch: list[_Join]) -> None:
    """Joining a public room makes a signed-in user a member of it."""
    lacking = {}
    for join in batch:
        known = room_known(join.slug)
        user_id = join.actor.user_id
        if known is not None and user_id is not None and not known.private:
            if known.people[user_id].role is None:
                lacking[(known.id, user_id)] = known
    if lacking:
        roles = await memberships_record(pairs=set(lacking))
        for (room_id, user_id), known in lacking.items():
            known.people[user_id] = Person(role=roles.get((room_id, user_id)))


async def _answer(batch: list[_Join]) -> None:
    """Each room's `joined` (one per `since` asked) and `presence`, framed
    once, and its joiners marked present with one call."""
    by_room: dict[str, list[_Join]] = {}
    for join in batch:
        by_room.setdefault(join.slug, []).append(join)
    for slug, joins in by_room.items():
        known = room_known(slug)
        assert known is not None  # a room refused or left has no admitted joins
        last_seq = known.last_seq
        presence = await presence_enter(
            slug=slug, entrants=[(j.actor, j.socket.channel_name) for j in joins]
        )
        presence_frame = Frame(protocol.encode(presence))
        frames: dict[int | None, Frame] = {}
        for join in joins:
            if join.since not in frames:
                frames[join.since] = await _joined_frame(known, since=join.since, last_seq=last_seq)
            join.future.set_result(Joined(frames[join.since], presence_frame, last_seq))


async def _joined_frame(known: RoomKnown, *, since: int | None, last_seq: int) -> Frame:
    texts, seqs = await _page_texts(known, since=since, last_seq=last_seq)
    joined = protocol.JoinedEvent(
        room=known.slug,
        title=known.title,
        private=known.private,
        kind=RoomKind(known.kind),
        members=known.members,
        guests_can_write=known.guests_can_write,
        last_seq=last_seq,
        messages=[],
        complete=since is None or (seqs[-1] if seqs else since) >= last_seq,
    )
    # The page's frames are encoded already: they go into the frame as they are.
    text = protocol.encode(joined).replace('"messages":[]', f'"messages":[{",".join(texts)}]', 1)
    return Frame(text)


async def _page_texts(
    known: RoomKnown, *, since: int | None, last_seq: int
) -> tuple[list[str], list[int]]:
    """The encoded frames of a join's page, and their seqs: from this
    process's cache of the room's recent frames when it holds the whole page
    (chat/realtime/framecache.py), else from the database."""
    limit = settings.CHAT_HISTORY_PAGE
    cache = room_frames(known.slug)
    texts = cache.page(after=since, upto=last_seq, limit=limit) if cache else None
    if texts is not None and sum(len(t) for t in texts) < protocol.MAX_FRAME_BYTES // 4 * 3:
        metrics.PAGES.labels("cache").inc()
        if since is not None:
            return texts, list(range(since + 1, since + 1 + len(texts)))
        return texts, list(range(last_seq - len(texts) + 1, last_seq + 1))
    metrics.PAGES.labels("database").inc()
    messages = await messages_page(room_id=known.id, after=since, upto=last_seq, limit=limit)
    frames = protocol.fit_page(
        await message_frames(messages, room=known.slug), oldest=since is not None
    )
    texts = [protocol.encode(f) for f in frames]
    if cache is not None:  # the next joins of the room find them there
        cache.learn([(f.seq, text, f.target) for f, text in zip(frames, texts, strict=True)])
    return texts, [f.seq for f in frames]


async def room_leave(
    *,
    actor: Actor,
    slug: str,
    socket: Socket,
    reason: LeftReason = LeftReason.LEAVE,
) -> protocol.LeftEvent:
    """Take the socket out of the room's group and presence."""
    await room_unsubscribe(slug=slug, socket=socket)
    await presence_leave(slug=slug, actor=actor, channel=socket.channel_name)
    return protocol.LeftEvent(room=slug, reason=reason)

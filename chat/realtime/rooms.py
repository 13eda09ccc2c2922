"""Joining and leaving a room with a socket: the access check, the
subscription, the `joined` page (from this process's frame cache when it
holds the page, else the database) and presence."""

from dataclasses import dataclass

from django.conf import settings

from chat import metrics, protocol
from chat.actor import Actor
from chat.models import Room
from chat.protocol import LeftReason, RoomKind
from chat.realtime.presence import presence_enter, presence_leave
from chat.realtime.relay import room_frames, room_subscribe, room_unsubscribe
from chat.realtime.sockets import Socket
from chat.selectors.messages import message_frames, messages_page
from chat.selectors.rooms import dms_members, room_get_readable, site_room
from chat.services.rooms import room_enter


async def room_join(
    *, actor: Actor, slug: str, since: int | None, socket: Socket
) -> tuple["Joined", protocol.PresenceEvent]:
    """Join a room: check access, subscribe the socket, read what it lacks, mark it present.

    Joining never makes a room (`room_create` does), but one of the site's
    rooms (CHAT_DEFAULT_ROOMS) if it is missing: a room that does not exist
    and a private one the actor is not in answer the same `not_found`.
    Subscribing before reading means no message falls between the two: any
    message with seq > last_seq is broadcast after the subscription.
    """
    if actor.user is not None or site_room(slug):
        await room_enter(slug=slug, user=actor.user)
    room = await room_get_readable(slug=slug, actor=actor)
    await room_subscribe(slug=slug, socket=socket)
    try:
        joined = await _joined_read(room=room, since=since)
        presence = await presence_enter(slug=slug, actor=actor, channel=socket.channel_name)
    except BaseException:
        if slug not in socket.rooms:  # not a rejoin: the relay keeps no socket outside a room
            await room_unsubscribe(slug=slug, socket=socket)
        raise
    return joined, presence


async def _joined_read(*, room: Room, since: int | None) -> "Joined":
    """The `joined` frame of a room the socket has just subscribed to."""
    await room.arefresh_from_db(fields=["last_seq"])
    texts, seqs = await _page_texts(room=room, since=since)
    complete = since is None or (seqs[-1] if seqs else since) >= room.last_seq
    dm = room.kind == RoomKind.DM
    members = (await dms_members(room_ids=[room.pk]))[room.pk] if dm else []
    joined = protocol.JoinedEvent(
        room=room.slug,
        title=room.title,
        private=room.private,
        kind=RoomKind(room.kind),
        members=members,
        guests_can_write=room.guests_can_write,
        last_seq=room.last_seq,
        messages=[],
        complete=complete,
    )
    # The page's frames are encoded already: they go into the frame as they are.
    text = protocol.encode(joined).replace('"messages":[]', f'"messages":[{",".join(texts)}]', 1)
    return Joined(text=text, last_seq=room.last_seq)


@dataclass(frozen=True, slots=True)
class Joined:
    """A `joined` frame, encoded, and the room's last_seq it was read at."""

    text: str
    last_seq: int


async def _page_texts(*, room: Room, since: int | None) -> tuple[list[str], list[int]]:
    """The encoded frames of a join's page, and their seqs: from this
    process's cache of the room's recent frames when it holds the whole page
    (chat/realtime/framecache.py), else from the database."""
    limit = settings.CHAT_HISTORY_PAGE
    cache = room_frames(room.slug)
    texts = cache.page(after=since, upto=room.last_seq, limit=limit) if cache else None
    if texts is not None and sum(len(t) for t in texts) < protocol.MAX_FRAME_BYTES // 4 * 3:
        metrics.PAGES.labels("cache").inc()
        if since is not None:
            return texts, list(range(since + 1, since + 1 + len(texts)))
        return texts, list(range(room.last_seq - len(texts) + 1, room.last_seq + 1))
    metrics.PAGES.labels("database").inc()
    messages = await messages_page(room=room, after=since, upto=room.last_seq, limit=limit)
    frames = protocol.fit_page(
        await message_frames(messages, room=room.slug), oldest=since is not None
    )
    return [protocol.encode(f) for f in frames], [f.seq for f in frames]


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

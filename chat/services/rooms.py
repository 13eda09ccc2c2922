"""Rooms and memberships."""

from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from chat import metrics, protocol
from chat.access import member_removal_refusal, room_manager_refusal
from chat.actor import Actor
from chat.models import Membership, ModerationLog, Room, Sanction
from chat.protocol import LeftReason, ModerationAction, Role, RoomKind
from chat.selectors.messages import message_frames, messages_page
from chat.selectors.rooms import dms_members, room_get_readable, sanctions_active
from chat.services.broadcast import (
    on_commit_broadcast,
    room_access_broadcast,
    room_frames,
    room_removed_broadcast,
    room_subscribe,
    room_unsubscribe,
    user_frame_broadcast,
)
from chat.services.presence import presence_enter, presence_leave
from chat.sockets import Socket


async def room_create(*, slug: str, creator: User, title: str = "", private: bool = False) -> Room:
    """Create a room with its creator as owner; `conflict` if the slug is taken."""
    return await _room_create(slug=slug, creator=creator, title=title, private=private)


@database_sync_to_async
def _room_create(*, slug: str, creator: User, title: str, private: bool) -> Room:
    try:
        with transaction.atomic():
            room = Room.objects.create(
                slug=slug, title=title or slug, private=private, creator=creator
            )
            Membership.objects.create(room=room, user=creator, role=Membership.Role.OWNER)
    except IntegrityError:
        raise protocol.ChatError(
            protocol.ErrorCode.CONFLICT, f"the room '{slug}' exists already"
        ) from None
    return room


def _room_managed(*, slug: str, user: User, lock: bool = False) -> Room:
    """The room, if the user is its owner or a moderator; else not_found or
    forbidden. `lock`: its row is locked for the transaction."""
    rooms = Room.objects.select_for_update() if lock else Room.objects
    room = rooms.filter(slug=slug).first()
    role = Membership.objects.filter(room=room, user=user).values_list("role", flat=True).first()
    if refusal := room_manager_refusal(room=room, slug=slug, role=role):
        raise refusal
    assert room is not None  # else refused
    return room


@database_sync_to_async
def _room_update(
    *,
    slug: str,
    user: User,
    title: str | None = None,
    private: bool | None = None,
    guests_can_write: bool | None = None,
) -> bool:
    """Change what was given; True if the room has just become private."""
    with transaction.atomic():
        room = _room_managed(slug=slug, user=user, lock=True)
        closing = private is True and not room.private
        if title is not None:
            room.title = title
        if private is not None:
            room.private = private
        if guests_can_write is not None:
            room.guests_can_write = guests_can_write
        room.save(update_fields=["title", "private", "guests_can_write"])
    return closing


async def room_update(
    *,
    slug: str,
    user: User,
    title: str | None = None,
    private: bool | None = None,
    guests_can_write: bool | None = None,
) -> None:
    """Change a room's title, privacy, or whether guests may write to it, if
    the user is its owner or a moderator. A room made private is left at once
    by every socket that may no longer read it, on every process."""
    closing = await _room_update(
        slug=slug, user=user, title=title, private=private, guests_can_write=guests_can_write
    )
    if closing:
        await room_access_broadcast(room=slug, private=True)


def room_private_announce(*, slug: str) -> None:
    """Once the surrounding transaction commits, tell every process that the
    room is now private (for a change made outside `room_update`: the admin,
    which is sync)."""
    on_commit_broadcast(room_access_broadcast, room=slug, private=True)


@database_sync_to_async
def _room_enter(*, slug: str, user: User | None) -> None:
    """Create a missing public room, and record a user's membership of a
    public room, unless they are banned from it (then nothing is written)."""
    # Joins are frequent (clients rejoin every room on each reconnect): read
    # first, and take a write transaction only when something is missing.
    room = Room.objects.filter(slug=slug).only("private").first()
    if room is not None and (
        user is None or room.private or Membership.objects.filter(room=room, user=user).exists()
    ):
        return
    with transaction.atomic():
        room, created = Room.objects.get_or_create(
            slug=slug, defaults={"title": slug, "creator": user}
        )
        if user is None:
            return
        if not created:
            # Under the room's lock, as bans are written (_moderation_apply): a
            # ban cannot land between this check and the membership.
            room = Room.objects.select_for_update().get(pk=room.pk)
            if (
                room.private
                or Sanction.objects.filter(
                    sanctions_active(), room=room, user=user, kind=Sanction.Kind.BAN
                ).exists()
            ):
                return
        role = Membership.Role.OWNER if created else Membership.Role.MEMBER
        Membership.objects.get_or_create(room=room, user=user, defaults={"role": role})


async def room_join(
    *, actor: Actor, slug: str, since: int | None, socket: Socket
) -> tuple["Joined", protocol.PresenceEvent]:
    """Join a room: check access, subscribe the socket, read what it lacks, mark it present.

    Signed-in users create a public room by joining it. Guests cannot create
    rooms, except the default rooms (CHAT_DEFAULT_ROOMS). Subscribing before
    reading means no message falls between the two: any message with
    seq > last_seq is broadcast after the subscription.
    """
    if actor.user is not None or slug in settings.CHAT_DEFAULT_ROOMS:
        await _room_enter(slug=slug, user=actor.user)
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
    (chat/framecache.py), else from the database."""
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


async def read_marker_set(*, actor: Actor, slug: str, seq: int) -> None:
    """Move the user's unread marker forward to `seq` (never back, never past
    the room's last seq). Guests keep no marker."""
    room = await room_get_readable(slug=slug, actor=actor)
    if actor.user is not None:
        seq = min(seq, room.last_seq)
        await Membership.objects.filter(room=room, user=actor.user, last_read_seq__lt=seq).aupdate(
            last_read_seq=seq
        )


async def membership_invite(*, slug: str, inviter: User, username: str) -> None:
    """Add a user to a room (idempotent), if the inviter is its owner or a
    moderator; the user's open sockets hear of it (`added`)."""
    user_id, added = await _membership_invite(slug=slug, inviter=inviter, username=username)
    await user_frame_broadcast(user_ids={user_id}, frame=added)


@database_sync_to_async
def _membership_invite(
    *, slug: str, inviter: User, username: str
) -> tuple[int, protocol.AddedEvent]:
    room = _room_managed(slug=slug, user=inviter)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no user {username!r}")
    Membership.objects.get_or_create(room=room, user=user, defaults={"role": Role.MEMBER})
    return user.pk, protocol.AddedEvent(room=room.slug, title=room.title, kind=RoomKind(room.kind))


@database_sync_to_async
def _membership_remove(*, slug: str, user: User, username: str) -> int:
    oneself = username == user.get_username()
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(slug=slug).first()
        roles = dict(
            Membership.objects.filter(
                room=room, user__username__in={user.get_username(), username}
            ).values_list("user__username", "role")
        )
        membership = Membership.objects.filter(room=room, user__username=username).first()
        if refusal := member_removal_refusal(
            room=room,
            slug=slug,
            mine=roles.get(user.get_username()),
            target=username,
            theirs=membership.role if membership else None,
            oneself=oneself,
            dm=room is not None and room.kind == Room.Kind.DM,
        ):
            raise refusal
        assert membership is not None  # else refused above
        membership.delete()
        if not oneself:
            ModerationLog.objects.create(
                room=room,
                room_slug=slug,
                actor=user,
                actor_name=user.get_username(),
                action=ModerationAction.KICK,
                target_id=membership.user_id,
                target_name=username,
                reason="removed from the members",
            )
    return membership.user_id


async def membership_remove(*, slug: str, user: User, username: str) -> None:
    """Take a member out of a room: oneself, or (logged as a kick) a member by
    the owner or a moderator, a moderator by the owner only. The owner cannot
    leave their own room. The member's sockets leave the room."""
    user_id = await _membership_remove(slug=slug, user=user, username=username)
    oneself = username == user.get_username()
    reason = LeftReason.LEAVE if oneself else LeftReason.REMOVED
    await room_removed_broadcast(user_id=user_id, room=slug, reason=reason)

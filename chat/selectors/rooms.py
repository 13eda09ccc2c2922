"""Reading rooms: the facts access is decided on (chat/access.py), and the room lists."""

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat import protocol
from chat.access import role_effective, room_manager_refusal, room_refusal
from chat.actor import Actor
from chat.models import Membership, Mention, Message, Room, Sanction
from chat.protocol import LeftReason, Role, RoomKind


def site_room(slug: str) -> bool:
    """Whether a room is one of the site's (CHAT_DEFAULT_ROOMS), which no user owns."""
    return slug in settings.CHAT_DEFAULT_ROOMS


def role_get(*, room: Room | None, user: User | None) -> str | None:
    """The user's role in the room as the access rules see it: their
    membership's, or owner for site staff in one of the site's rooms."""
    if room is None or user is None:
        return None
    role = Membership.objects.filter(room=room, user=user).values_list("role", flat=True).first()
    return role_effective(role=role, staff=user.is_staff, site_room=site_room(room.slug))


def sanctions_active() -> Q:
    """Bans and mutes in force now: lifted ones are deleted, expired ones stay."""
    return Q(until__isnull=True) | Q(until__gt=timezone.now())


async def room_get_readable(*, slug: str, actor: Actor) -> Room:
    """The room, if the actor may read and write it (a mute is checked on
    writing); else not_found or forbidden. One query: this runs on most frames."""
    rooms = Room.objects.filter(slug=slug)
    if actor.user is not None:
        bans = Sanction.objects.filter(
            sanctions_active(), room=OuterRef("pk"), user=actor.user, kind=Sanction.Kind.BAN
        )
        rooms = rooms.annotate(
            member=Exists(Membership.objects.filter(room=OuterRef("pk"), user=actor.user)),
            banned=Exists(bans),
            ban_until=Subquery(bans.values("until")[:1]),
            ban_reason=Subquery(bans.values("reason")[:1]),
        )
    room = await rooms.afirst()
    member = getattr(room, "member", False)
    ban = None
    if getattr(room, "banned", False):
        ban = Sanction(
            kind=Sanction.Kind.BAN,
            until=getattr(room, "ban_until", None),
            reason=getattr(room, "ban_reason", ""),
        )
    if refusal := room_refusal(room=room, slug=slug, member=member, sanction=ban):
        raise refusal
    assert room is not None  # else refused
    return room


async def room_get_writable(*, slug: str, actor: Actor) -> Room:
    """The room, if the actor may write in it: read it, and not be muted (or,
    for a guest, guests may write to it)."""
    room = await room_get_readable(slug=slug, actor=actor)
    if refusal := room_refusal(room=room, slug=slug, member=True, guest_writing=actor.guest):
        raise refusal
    if actor.user is not None:
        mute = await Sanction.objects.filter(
            sanctions_active(), room=room, user=actor.user, kind=Sanction.Kind.MUTE
        ).afirst()
        if refusal := room_refusal(room=room, slug=slug, member=True, sanction=mute):
            raise refusal
    return room


async def room_managed_by(*, slug: str, user: User | None) -> Room:
    """The room, if the user is its owner or a moderator; else not_found or forbidden."""
    room = await Room.objects.filter(slug=slug).afirst()
    role = await sync_to_async(role_get)(room=room, user=user)
    if refusal := room_manager_refusal(room=room, slug=slug, role=role):
        raise refusal
    assert room is not None  # else refused
    return room


def rooms_readable(*, actor: Actor) -> Q:
    """Messages in rooms the actor may read: public ones (unless banned), and
    private ones they are a member of."""
    if actor.user is None:
        return Q(room__private=False)
    banned = Sanction.objects.filter(
        sanctions_active(), user=actor.user, kind=Sanction.Kind.BAN
    ).values("room")
    member_of = Membership.objects.filter(user=actor.user).values("room")
    return (Q(room__private=False) | Q(room__in=member_of)) & ~Q(room__in=banned)


async def rooms_barred(
    *, pairs: set[tuple[int | None, str]]
) -> dict[tuple[int | None, str], LeftReason]:
    """Of these (user id, room slug) pairs, those whose user may no longer read
    the room, with why: "ban", "removed" from a private room's members (or
    the room is gone), or (a guest: user id None) "private"."""
    if not pairs:
        return {}
    slugs = {slug for _, slug in pairs}
    users = {user for user, _ in pairs if user is not None}
    barred: dict[tuple[int | None, str], LeftReason] = {}
    if users:
        banned = Sanction.objects.filter(
            sanctions_active(), kind=Sanction.Kind.BAN, user_id__in=users, room__slug__in=slugs
        ).values_list("user_id", "room__slug")
        barred = {pair: LeftReason.BAN async for pair in banned if pair in pairs}
    rooms = Room.objects.filter(slug__in=slugs).values_list("slug", "private")
    private = {slug: is_private async for slug, is_private in rooms}
    closed = {slug for slug in slugs if private.get(slug, True)}  # private, or gone
    if closed:
        kept = set()
        if users:
            members = Membership.objects.filter(
                user_id__in=users, room__slug__in=closed
            ).values_list("user_id", "room__slug")
            kept = {pair async for pair in members}
        for pair in pairs:
            if pair[1] in closed and pair not in kept:
                guest = pair[0] is None and pair[1] in private
                barred.setdefault(pair, LeftReason.PRIVATE if guest else LeftReason.REMOVED)
    return barred


@dataclass(frozen=True, slots=True)
class JoinFacts:
    """What joins need to know of their rooms and joiners, read together:
    the rooms by slug, each (room id, user id)'s role and ban in force, and
    each DM's members by name."""

    rooms: dict[str, Room]
    roles: dict[tuple[int, int], str]
    bans: dict[tuple[int, int], Sanction]
    members: dict[int, list[str]]


async def rooms_join_facts(*, slugs: set[str], users: set[int]) -> JoinFacts:
    """The facts of these rooms and of these users in them: one query of each
    kind, whatever the number of joins they serve."""
    rooms = {room.slug: room async for room in Room.objects.filter(slug__in=slugs)}
    ids = [room.pk for room in rooms.values()]
    roles: dict[tuple[int, int], str] = {}
    bans: dict[tuple[int, int], Sanction] = {}
    if ids and users:
        rows = Membership.objects.filter(room_id__in=ids, user_id__in=users)
        roles = {
            (r, u): role async for r, u, role in rows.values_list("room_id", "user_id", "role")
        }
        banned = Sanction.objects.filter(
            sanctions_active(), room_id__in=ids, user_id__in=users, kind=Sanction.Kind.BAN
        )
        bans = {(s.room_id, s.user_id): s async for s in banned}
    dms = [room.pk for room in rooms.values() if room.kind == RoomKind.DM]
    return JoinFacts(rooms=rooms, roles=roles, bans=bans, members=await dms_members(room_ids=dms))


async def rooms_last_seq(*, slugs: list[str]) -> dict[str, int]:
    """The last_seq of each of these rooms, in one query."""
    rows = Room.objects.filter(slug__in=slugs).values_list("slug", "last_seq")
    return {slug: last_seq async for slug, last_seq in rows}


async def dms_members(*, room_ids: list[int]) -> dict[int, list[str]]:
    """The members' usernames of each of these DMs, by name, in one query."""
    members: dict[int, list[str]] = {room_id: [] for room_id in room_ids}
    if room_ids:
        rows = Membership.objects.filter(room_id__in=room_ids).order_by("user__username")
        async for room_id, username in rows.values_list("room_id", "user__username"):
            members[room_id].append(username)
    return members


def _room_out(
    room: Room,
    *,
    role: str | None,
    members: list[str] | None = None,
    read: int = 0,
    unread: int = 0,
    mentions: int = 0,
) -> protocol.RoomOut:
    return protocol.RoomOut(
        slug=room.slug,
        title=room.title,
        private=room.private,
        kind=RoomKind(room.kind),
        members=members or [],
        guests_can_write=room.guests_can_write,
        last_seq=room.last_seq,
        role=Role(role) if role else None,
        last_read_seq=read,
        unread=unread,
        mentions=mentions,
    )


async def rooms_visible(
    *, user: User | AnonymousUser | None, slug: str | None = None
) -> list[protocol.RoomOut]:
    """Public rooms and the private rooms the user is a member of (or only room
    `slug`, if visible), by slug, each with the user's `role` (None if not a
    member), read marker and `unread`: others' messages after that marker."""
    rooms = Room.objects.order_by("slug")
    if slug is not None:
        rooms = rooms.filter(slug=slug)
    if user is None or not user.is_authenticated:
        return [_room_out(room, role=None) async for room in rooms.filter(private=False)]
    membership = Membership.objects.filter(room=OuterRef("pk"), user=user)
    unread = (
        Message.objects.filter(
            room=OuterRef("pk"),
            kind=Message.Kind.MESSAGE,
            deleted=False,
            seq__gt=Coalesce(OuterRef("read"), 0),
        )
        .exclude(author=user)
        .values("room")
        .annotate(count=Count("pk"))
        .values("count")
    )
    mentions = (
        Mention.objects.filter(
            room=OuterRef("pk"), user=user, seq__gt=Coalesce(OuterRef("read"), 0)
        )
        .values("room")
        .annotate(count=Count("pk"))
        .values("count")
    )
    member_of = Membership.objects.filter(user=user).values("room")
    rooms = (
        rooms.filter(Q(private=False) | Q(pk__in=member_of))
        .annotate(read=Subquery(membership.values("last_read_seq")))
        .annotate(role=Subquery(membership.values("role")))
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .annotate(mentions=Coalesce(Subquery(mentions), 0))
    )
    found = [room async for room in rooms]
    members = await dms_members(room_ids=[r.pk for r in found if r.kind == RoomKind.DM])
    return [
        _room_out(
            room,
            role=room.role,
            members=members.get(room.pk),
            read=room.read or 0,
            unread=room.unread if room.role else 0,
            mentions=room.mentions if room.role else 0,
        )
        for room in found
    ]


async def room_get_visible(*, slug: str, actor: Actor) -> protocol.RoomOut:
    """One room as `rooms_visible` shows it; not_found or forbidden as for reading."""
    await room_get_readable(slug=slug, actor=actor)
    return (await rooms_visible(user=actor.user, slug=slug))[0]


async def room_members(*, slug: str, actor: Actor) -> list[protocol.MemberOut]:
    """The members of a room the actor may read, by username."""
    room = await room_get_readable(slug=slug, actor=actor)
    members = room.memberships.select_related("user").order_by("user__username")
    return [
        protocol.MemberOut(username=m.user.get_username(), role=Role(m.role), joined=m.joined)
        async for m in members
    ]

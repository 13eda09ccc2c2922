"""Rooms and memberships."""

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from chat import protocol
from chat.access import (
    member_removal_refusal,
    role_effective,
    room_manager_refusal,
    site_room_privacy_refusal,
)
from chat.actor import Actor
from chat.models import Membership, ModerationLog, Room, Sanction
from chat.protocol import LeftReason, ModerationAction, Role, RoomKind
from chat.selectors.rooms import (
    role_get,
    room_get_readable,
    sanctions_active,
    site_room,
)
from chat.services.broadcast import (
    changes_announced,
    room_access_broadcast,
    room_removed_broadcast,
    user_frame_broadcast,
)
from chat.services.limits import rate_take


async def room_create(*, slug: str, creator: User, title: str = "", private: bool = False) -> Room:
    """Create a room with its creator as owner, within the creation rate;
    `conflict` if the name is taken, by any room, one the creator cannot see
    included, in the same words (so a name refused says nothing more)."""
    await rate_take(
        buckets={f"rooms:user:{creator.pk}": (settings.CHAT_ROOMS_BURST, _per_minute())},
        detail="making rooms too fast",
    )
    return await _room_create(slug=slug, creator=creator, title=title, private=private)


def _per_minute() -> float:
    return settings.CHAT_ROOMS_PER_HOUR / 60


@database_sync_to_async
def _room_create(*, slug: str, creator: User, title: str, private: bool) -> Room:
    try:
        with transaction.atomic(), changes_announced():
            room = Room.objects.create(
                slug=slug, title=title or slug, private=private, creator=creator
            )
            Membership.objects.create(room=room, user=creator, role=Membership.Role.OWNER)
    except IntegrityError:
        raise protocol.ChatError(
            protocol.ErrorCode.CONFLICT, f"the name '{slug}' is taken: choose another"
        ) from None
    return room


def rooms_site_ensure() -> None:
    """Make the site's rooms (CHAT_DEFAULT_ROOMS) that do not exist yet:
    public, and owned by no user (site staff manage them). Run after each
    `migrate`."""
    for slug in settings.CHAT_DEFAULT_ROOMS:
        Room.objects.get_or_create(slug=slug, defaults={"title": slug})


def _room_managed(*, slug: str, user: User, lock: bool = False) -> Room:
    """The room, if the user is its owner or a moderator; else not_found or
    forbidden. `lock`: its row is locked for the transaction."""
    rooms = Room.objects.select_for_update() if lock else Room.objects
    room = rooms.filter(slug=slug).first()
    if refusal := room_manager_refusal(room=room, slug=slug, role=role_get(room=room, user=user)):
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
) -> None:
    """Change what was given."""
    with transaction.atomic(), changes_announced():
        room = _room_managed(slug=slug, user=user, lock=True)
        if private and (refusal := site_room_privacy_refusal(site_room=site_room(slug))):
            raise refusal
        if title is not None:
            room.title = title
        if private is not None:
            room.private = private
        if guests_can_write is not None:
            room.guests_can_write = guests_can_write
        room.save(update_fields=["title", "private", "guests_can_write"])


async def room_update(
    *,
    slug: str,
    user: User,
    title: str | None = None,
    private: bool | None = None,
    guests_can_write: bool | None = None,
) -> None:
    """Change a room's title, privacy, or whether guests may write to it, if
    the user is its owner or a moderator (the site's rooms stay public). A
    room made private is left at once by every socket that may no longer read
    it, on every process."""
    await _room_update(
        slug=slug, user=user, title=title, private=private, guests_can_write=guests_can_write
    )
    await room_access_broadcast(room=slug)


async def rooms_site_make(*, slugs: set[str]) -> None:
    """Make those of these rooms that are the site's (CHAT_DEFAULT_ROOMS) and
    missing: what a join of one may write. No other room is made by joining."""
    if made := {slug for slug in slugs if site_room(slug)}:
        await _rooms_site_make(slugs=made)


@database_sync_to_async
def _rooms_site_make(*, slugs: set[str]) -> None:
    for slug in sorted(slugs):
        Room.objects.get_or_create(slug=slug, defaults={"title": slug})


async def memberships_record(*, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """Record these (room id, user id) memberships of public rooms, joined
    by users who were not members yet, unless a ban of them is in force
    there (then nothing is written for them); returns the role of each pair
    that is a member now. One transaction, whatever their number."""
    return await _memberships_record(pairs=pairs) if pairs else {}


@database_sync_to_async
def _memberships_record(*, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    rooms = sorted({room for room, _ in pairs})
    users = {user for _, user in pairs}
    with transaction.atomic(), changes_announced():
        # Under the rooms' locks (in id order), as bans are written
        # (_moderation_apply): a ban cannot land between this check and the membership.
        public = set(
            Room.objects.select_for_update()
            .filter(pk__in=rooms, private=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        banned = set(
            Sanction.objects.filter(
                sanctions_active(), room_id__in=public, user_id__in=users, kind=Sanction.Kind.BAN
            ).values_list("room_id", "user_id")
        )
        entering = [(r, u) for r, u in sorted(pairs) if r in public and (r, u) not in banned]
        Membership.objects.bulk_create(
            [Membership(room_id=r, user_id=u, role=Role.MEMBER) for r, u in entering],
            ignore_conflicts=True,  # one made meanwhile stands, with its role
        )
        rows = Membership.objects.filter(room_id__in=public, user_id__in=users)
        roles = {(r, u): role for r, u, role in rows.values_list("room_id", "user_id", "role")}
    return {pair: roles[pair] for pair in pairs if pair in roles}


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
    await room_access_broadcast(room=slug, user_id=user_id)


@database_sync_to_async
def _membership_invite(
    *, slug: str, inviter: User, username: str
) -> tuple[int, protocol.AddedEvent]:
    room = _room_managed(slug=slug, user=inviter)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no user {username!r}")
    with changes_announced():
        Membership.objects.get_or_create(room=room, user=user, defaults={"role": Role.MEMBER})
    return user.pk, protocol.AddedEvent(room=room.slug, title=room.title, kind=RoomKind(room.kind))


@database_sync_to_async
def _membership_remove(*, slug: str, user: User, username: str) -> int:
    oneself = username == user.get_username()
    with transaction.atomic(), changes_announced():
        room = Room.objects.select_for_update().filter(slug=slug).first()
        membership = (
            Membership.objects.select_related("user")
            .filter(room=room, user__username=username)
            .first()
        )
        theirs = None
        if membership is not None:
            theirs = role_effective(
                role=membership.role, staff=membership.user.is_staff, site_room=site_room(slug)
            )
        if refusal := member_removal_refusal(
            room=room,
            slug=slug,
            mine=role_get(room=room, user=user),
            target=username,
            theirs=theirs,
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
    await room_access_broadcast(room=slug, user_id=user_id)

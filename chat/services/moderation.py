"""Moderation: kick, ban, mute and roles, each written to the audit log.

Who may act on whom: the owner on anyone else; a moderator on members (not
on the owner or another moderator); promote and demote are the owner's.
Everything is checked and written in one transaction, under the room's row
lock; the room hears of it (`moderated`) only after the commit, and a kicked
or banned user's sockets leave the room at once (the sweep catches any the
layer missed).

Changes of who may be in a room made any other way (the admin, a shell, any
ORM save) reach live sockets too, through the model signals below, once
they commit, on every process.
"""

from datetime import timedelta

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat import protocol
from chat.access import moderation_refusal, role_effective
from chat.actor import Actor
from chat.models import Membership, Message, ModerationLog, Room, Sanction
from chat.protocol import AuditAction, Role, RoomKind
from chat.selectors.rooms import site_room
from chat.services.broadcast import (
    changes_announced,
    changes_unannounced,
    on_commit_broadcast,
    room_access_broadcast,
    room_broadcast,
    room_removed_broadcast,
    user_frame_broadcast,
)
from chat.services.limits import send_rate_take

_SANCTIONS = {"ban": Sanction.Kind.BAN, "mute": Sanction.Kind.MUTE}
_LIFTS = {"unban": Sanction.Kind.BAN, "unmute": Sanction.Kind.MUTE}


@database_sync_to_async
def _moderation_apply(
    *, slug: str, actor: Actor, moderation: protocol.Moderation
) -> tuple[protocol.ModeratedEvent, int]:
    """Check and apply one moderation action, and log it; returns the event
    and the target's user id, or raises the ChatError that refuses it
    (nothing written)."""
    action, username = moderation.action, moderation.user
    with transaction.atomic(), changes_announced():
        room = Room.objects.select_for_update().filter(slug=slug).first()
        roles = dict(
            Membership.objects.filter(
                room=room, user__username__in={actor.name, username}
            ).values_list("user__username", "role")
        )
        site = site_room(slug)
        mine = None
        if actor.user is not None:
            mine = role_effective(
                role=roles.get(actor.name), staff=actor.user.is_staff, site_room=site
            )
        target = get_user_model().objects.filter(username=username, is_active=True).first()
        staff = target is not None and target.is_staff
        theirs = role_effective(role=roles.get(username), staff=staff, site_room=site)
        if refusal := moderation_refusal(
            room=room,
            slug=slug,
            mine=mine,
            target=username,
            found=target is not None,
            theirs=theirs,
            action=action,
            oneself=target is not None and target.pk == actor.user_id,
        ):
            raise refusal
        assert target is not None and room is not None  # else refused above
        until = None
        if moderation.minutes is not None:
            until = timezone.now() + timedelta(minutes=moderation.minutes)
        memberships = Membership.objects.filter(room=room, user=target)
        if action in ("promote", "demote"):
            if theirs is None:
                raise protocol.ChatError(
                    protocol.ErrorCode.NOT_FOUND, f"{username!r} is not a member"
                )
            memberships.update(role=Role.MODERATOR if action == "promote" else Role.MEMBER)
        elif action == "kick":
            # A kick out of a private room takes the membership (an invitation
            # brings them back); a public room can be joined again at once.
            if room.private:
                memberships.delete()
        elif action in _SANCTIONS:
            Sanction.objects.update_or_create(
                room=room,
                user=target,
                kind=_SANCTIONS[action],
                defaults={"until": until, "reason": moderation.reason, "by": actor.user},
            )
            if action == "ban":
                memberships.delete()
        else:
            Sanction.objects.filter(room=room, user=target, kind=_LIFTS[action]).delete()
        ModerationLog.objects.create(
            room=room,
            room_slug=slug,
            actor=actor.user,
            actor_name=actor.name,
            action=action,
            target=target,
            target_name=username,
            until=until,
            reason=moderation.reason,
        )
    event = protocol.ModeratedEvent(
        room=slug,
        action=action,
        user=username,
        by=actor.name,
        until=until,
        reason=moderation.reason,
    )
    return event, target.pk


async def room_moderate(
    *, slug: str, actor: Actor, moderation: protocol.Moderation, address: str | None = None
) -> protocol.ModeratedEvent:
    """Apply a moderation action (within the send rates), tell the room, and
    take a kicked or banned user's sockets out of it; then every process
    forgets what it knew of the user in the room (`room.access`)."""
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "guests cannot moderate")
    await send_rate_take(actor=actor, address=address)
    event, target_id = await _moderation_apply(slug=slug, actor=actor, moderation=moderation)
    await room_broadcast(room=slug, frame=event)
    if moderation.action in ("kick", "ban"):
        reason = protocol.LeftReason(moderation.action)
        await room_removed_broadcast(user_id=target_id, room=slug, reason=reason)
    await room_access_broadcast(room=slug, user_id=target_id)
    return event


def audit_record_export(*, room: Room, user: User) -> None:
    """Log an export of a room by someone who is not its owner (by the
    permission to export any room), in the export's transaction."""
    ModerationLog.objects.create(
        room=room,
        room_slug=room.slug,
        actor=user,
        actor_name=user.get_username(),
        action=AuditAction.EXPORT,
        target_name="",
        reason="exported by the permission to export any room",
    )


def moderation_log_record_delete(*, message: Message, slug: str, actor: Actor) -> None:
    """Log a moderator's delete of another's message (in the delete's transaction)."""
    ModerationLog.objects.create(
        room_id=message.room_id,
        room_slug=slug,
        actor=actor.user,
        actor_name=actor.name,
        action=AuditAction.DELETE,
        target_id=message.author_id,
        target_name=message.author_name,
        seq=message.seq,
    )


# --- Changes made outside the services ------------------------------------------
# Signal receivers (chat/apps.py). The services announce their own changes
# (`changes_announced`), with what they know (a kick's reason); these
# announce the rest, once they commit: each process checks the affected
# sockets against the database, and those that may no longer read the room leave.


def _slug(room_id: int) -> str | None:
    return Room.objects.filter(pk=room_id).values_list("slug", flat=True).first()


def _with_its_room(origin: object) -> bool:
    """Whether a delete is part of its room's: the room's own signal tells it."""
    return getattr(origin, "model", type(origin)) is Room


def membership_saved(sender, instance: Membership, created: bool = False, **kwargs) -> None:
    """A membership made (the user's sockets hear `added`) or changed (a role)."""
    if not changes_unannounced():
        return
    room = Room.objects.get(pk=instance.room_id)
    if created:
        added = protocol.AddedEvent(room=room.slug, title=room.title, kind=RoomKind(room.kind))
        on_commit_broadcast(user_frame_broadcast, user_ids={instance.user_id}, frame=added)
    else:
        on_commit_broadcast(room_access_broadcast, room=room.slug, user_id=instance.user_id)


def membership_or_sanction_changed(
    sender, instance: Membership | Sanction, origin: object = None, **kwargs
) -> None:
    """A membership taken away, or a ban or mute set or lifted."""
    if changes_unannounced() and not _with_its_room(origin):
        if slug := _slug(instance.room_id):
            on_commit_broadcast(room_access_broadcast, room=slug, user_id=instance.user_id)


def room_changed(sender, instance: Room, created: bool = False, **kwargs) -> None:
    """A room changed (made private, say) or deleted."""
    if changes_unannounced() and not created:
        on_commit_broadcast(room_access_broadcast, room=instance.slug)

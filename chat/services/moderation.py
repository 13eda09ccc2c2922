"""Moderation: kick, ban, mute and roles, each written to the audit log.

Who may act on whom: the owner on anyone else; a moderator on members (not
on the owner or another moderator); promote and demote are the owner's.
Everything is checked and written in one transaction, under the room's row
lock; the room hears of it (`moderated`) only after the commit, and a kicked
or banned user's sockets leave the room at once (the sweep catches any the
layer missed).
"""

from datetime import timedelta

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from chat import protocol
from chat.access import moderation_refusal
from chat.actor import Actor
from chat.models import Membership, Message, ModerationLog, Room, Sanction
from chat.protocol import EntryKind, Role
from chat.services.broadcast import room_broadcast, room_removed_broadcast
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
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(slug=slug).first()
        roles = dict(
            Membership.objects.filter(
                room=room, user__username__in={actor.name, username}
            ).values_list("user__username", "role")
        )
        mine = roles.get(actor.name) if actor.user is not None else None
        target = get_user_model().objects.filter(username=username, is_active=True).first()
        theirs = roles.get(username)
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
    take a kicked or banned user's sockets out of it."""
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "guests cannot moderate")
    await send_rate_take(actor=actor, address=address)
    event, target_id = await _moderation_apply(slug=slug, actor=actor, moderation=moderation)
    await room_broadcast(room=slug, frame=event)
    if moderation.action in ("kick", "ban"):
        reason = protocol.LeftReason(moderation.action)
        await room_removed_broadcast(user_id=target_id, room=slug, reason=reason)
    return event


def moderation_log_record_delete(*, message: Message, slug: str, actor: Actor) -> None:
    """Log a moderator's delete of another's message (in the delete's transaction)."""
    ModerationLog.objects.create(
        room_id=message.room_id,
        room_slug=slug,
        actor=actor.user,
        actor_name=actor.name,
        action=EntryKind.DELETE,
        target_id=message.author_id,
        target_name=message.author_name,
        seq=message.seq,
    )

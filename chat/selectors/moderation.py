"""Reading a room's audit log."""

from chat import protocol
from chat.actor import Actor
from chat.models import ModerationLog
from chat.selectors.rooms import room_managed_by


def _logged(action: str) -> protocol.ModerationAction | protocol.AuditAction:
    if action in set(protocol.AuditAction):
        return protocol.AuditAction(action)
    return protocol.ModerationAction(action)


async def moderation_log(
    *, slug: str, actor: Actor, limit: int = 100
) -> list[protocol.ModerationLogOut]:
    """The newest entries of a room's audit log, for its owner and moderators."""
    await room_managed_by(slug=slug, user=actor.user)
    entries = ModerationLog.objects.filter(room_slug=slug).order_by("-created", "-pk")[:limit]
    return [
        protocol.ModerationLogOut(
            action=_logged(e.action),
            actor=e.actor_name,
            target=e.target_name,
            seq=e.seq,
            until=e.until,
            reason=e.reason,
            created=e.created,
        )
        async for e in entries
    ]

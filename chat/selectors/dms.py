"""Reading blocks."""

from chat import protocol
from chat.models import Block


async def blocks_list(*, user_id: int | None) -> protocol.BlocksEvent:
    """Who the user has blocked, by username (nobody, for a guest)."""
    if user_id is None:
        return protocol.BlocksEvent(users=[])
    blocked = Block.objects.filter(user_id=user_id).order_by("blocked__username")
    names = blocked.values_list("blocked__username", flat=True)
    return protocol.BlocksEvent(users=[name async for name in names])

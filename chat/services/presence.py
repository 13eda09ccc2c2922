"""Ephemeral room activity: typing notices. Nothing here is stored."""

from chat import protocol
from chat.auth import Actor
from chat.selectors import room_get_readable
from chat.services.broadcast import room_broadcast


async def typing_notify(*, actor: Actor, slug: str, channel: str) -> None:
    """Tell the room's other sockets that the actor is typing."""
    await room_get_readable(slug=slug, actor=actor)
    frame = protocol.TypingEvent(room=slug, user=actor.author)
    await room_broadcast(room=slug, frame=frame, exclude=channel)

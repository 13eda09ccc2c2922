"""Room groups on the channel layer. Group names are built here and nowhere else."""

from channels.layers import get_channel_layer

from chat import protocol


def room_group(slug: str) -> str:
    """The channel-layer group of a room's sockets."""
    return f"room.{slug}"


async def room_broadcast(
    *,
    room: str,
    frame: protocol.ServerFrame,
    seq: int | None = None,
    exclude: str | None = None,
) -> None:
    """Send a frame to every socket in the room, encoded once for all of them.

    `seq` lets each socket drop a message it already sent in `joined`;
    `exclude` names a channel that should not get it (the typist, for typing).
    Call only after the write it announces has committed.
    """
    event = {
        "type": "room.event",
        "room": room,
        "seq": seq,
        "exclude": exclude,
        "text": protocol.encode(frame),
    }
    await get_channel_layer().group_send(room_group(room), event)

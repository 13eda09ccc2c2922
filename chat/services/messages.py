"""Sending messages: gapless per-room seq, idempotent by client_id, broadcast after commit."""

from uuid import UUID

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction

from chat import protocol
from chat.auth import Actor
from chat.models import Message, Room
from chat.selectors import message_frame, room_get_readable
from chat.services.broadcast import room_broadcast


def message_store(
    *, room_id: int, actor: Actor, body: str, client_id: UUID
) -> tuple[Message, bool]:
    """Store a message in one transaction; returns (message, created).

    The room row is locked, its last_seq bumped and the message inserted
    together, so seqs are gapless and in commit order (an auto-increment id is
    not: ids can commit out of order). A client_id already stored in the room
    returns that message instead, so a resend is acknowledged with its first seq.
    """
    try:
        with transaction.atomic():
            room = Room.objects.select_for_update().only("last_seq").get(pk=room_id)
            existing = Message.objects.filter(room_id=room_id, client_id=client_id).first()
            if existing is not None:
                return _same_author(existing, actor), False
            room.last_seq += 1
            room.save(update_fields=["last_seq"])
            message = Message.objects.create(
                room_id=room_id,
                seq=room.last_seq,
                author=actor.user,
                author_name=actor.name,
                body=body,
                client_id=client_id,
            )
            return message, True
    except IntegrityError:
        # The unique (room, client_id) constraint backs the lookup above; if a
        # duplicate ever got past the lock, the first stored copy wins.
        existing = Message.objects.filter(room_id=room_id, client_id=client_id).first()
        if existing is None:
            raise
        return _same_author(existing, actor), False


def _same_author(message: Message, actor: Actor) -> Message:
    if message.author_id != actor.user_id or message.author_name != actor.name:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST, "client_id already used by another author"
        )
    return message


_message_store_async = database_sync_to_async(message_store)


async def message_send(*, actor: Actor, slug: str, body: str, client_id: UUID) -> protocol.AckEvent:
    """Store and broadcast a message; the ack carries its seq. Resends are not re-broadcast."""
    room = await room_get_readable(slug=slug, actor=actor)
    message, created = await _message_store_async(
        room_id=room.pk, actor=actor, body=body, client_id=client_id
    )
    if created:
        frame = message_frame(message, room=slug)
        await room_broadcast(room=slug, frame=frame, seq=message.seq)
    return protocol.AckEvent(client_id=client_id, room=slug, seq=message.seq)

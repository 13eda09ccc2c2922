"""Sending messages: gapless per-room seq, idempotent by client_id, broadcast after commit."""

from datetime import timedelta
from uuid import UUID

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import metrics, protocol
from chat.auth import Actor
from chat.models import Message, Room
from chat.selectors import message_frame, room_get_readable
from chat.services.broadcast import room_broadcast
from chat.services.limits import send_allow


def message_store(
    *,
    room_id: int,
    actor: Actor,
    body: str,
    client_id: UUID,
    kind: str = Message.Kind.MESSAGE,
    target: int | None = None,
) -> tuple[Message, bool]:
    """Append an entry to a room's stream in one transaction; returns (entry, created).

    The room row is locked, its last_seq bumped and the entry inserted
    together, so seqs are gapless and in commit order (an auto-increment id is
    not: ids can commit out of order). A client_id already stored in the room
    returns that entry instead, so a resend is acknowledged with its first seq.
    An edit or delete also changes message `target`, in the same transaction.
    """
    try:
        with transaction.atomic():
            room = Room.objects.select_for_update().only("last_seq").get(pk=room_id)
            existing = Message.objects.filter(room_id=room_id, client_id=client_id).first()
            if existing is not None:
                return _same_author(existing, actor), False
            if kind != Message.Kind.MESSAGE:
                _target_change(room_id=room_id, seq=target, actor=actor, kind=kind, body=body)
            room.last_seq += 1
            room.save(update_fields=["last_seq"])
            entry = Message.objects.create(
                room_id=room_id,
                seq=room.last_seq,
                kind=kind,
                target=target,
                author=actor.user,
                author_name=actor.name,
                body=body,
                client_id=client_id,
            )
        metrics.MESSAGES_STORED.inc()
        return entry, True
    except IntegrityError:
        # The unique (room, client_id) constraint backs the lookup above; if a
        # duplicate ever got past the lock, the first stored copy wins.
        existing = Message.objects.filter(room_id=room_id, client_id=client_id).first()
        if existing is None:
            raise
        return _same_author(existing, actor), False


def _target_change(*, room_id: int, seq: int, actor: Actor, kind: str, body: str) -> None:
    """Apply an edit or delete to the author's own message, or refuse it."""
    message = Message.objects.filter(room_id=room_id, seq=seq, kind=Message.Kind.MESSAGE).first()
    if message is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no message {seq} in this room")
    if actor.user is None or message.author_id != actor.user_id:
        raise protocol.ChatError(
            protocol.ErrorCode.FORBIDDEN, "only its signed-in author may change a message"
        )
    if message.deleted:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, f"message {seq} was deleted")
    message.edited = timezone.now()
    message.deleted = kind == Message.Kind.DELETE
    message.body = body
    message.save(update_fields=["edited", "deleted", "body"])


def _same_author(message: Message, actor: Actor) -> Message:
    if message.author_id != actor.user_id or message.author_name != actor.name:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST, "client_id already used by another author"
        )
    return message


_message_store_async = database_sync_to_async(message_store)


async def message_send(
    *,
    actor: Actor,
    slug: str,
    body: str,
    client_id: UUID,
    kind: str = Message.Kind.MESSAGE,
    target: int | None = None,
    address: str | None = None,
) -> protocol.AckEvent:
    """Store and broadcast a stream entry (a message, or an edit or delete of
    message `target`) from a client at `address`, within the send rates; the
    ack carries its seq. Resends are not re-broadcast."""
    room = await room_get_readable(slug=slug, actor=actor)
    await send_allow(actor=actor, address=address)
    entry, created = await _message_store_async(
        room_id=room.pk, actor=actor, body=body, client_id=client_id, kind=kind, target=target
    )
    if created:
        await room_broadcast(room=slug, frame=message_frame(entry, room=slug), seq=entry.seq)
    return protocol.AckEvent(client_id=client_id, room=slug, seq=entry.seq)


@database_sync_to_async
def messages_expire(*, older_than: timedelta) -> int:
    """Erase the text of stream entries older than this; returns how many.

    The entries stay, marked deleted, so each room's seqs stay gapless and
    clients' gap detection holds.
    """
    cutoff = timezone.now() - older_than
    return Message.objects.filter(created__lt=cutoff, deleted=False).update(body="", deleted=True)

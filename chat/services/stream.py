"""A room's stream: entries appended with gapless seqs, idempotent by client_id."""

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import metrics, protocol
from chat.access import (
    MANAGERS,
    RoomFacts,
    SanctionFacts,
    dm_blocked_refusal,
    message_change_refusal,
    reaction_refusal,
    room_refusal,
)
from chat.actor import Actor
from chat.models import Attachment, Block, Membership, Mention, Message, Reaction, Room, Sanction
from chat.protocol import EntryKind
from chat.selectors.rooms import role_get, sanctions_active
from chat.services.attachments import attachments_delete
from chat.services.moderation import moderation_log_record_delete


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One entry to append to a room's stream: a message (maybe a reply to
    message `reply_to`, maybe holding an uploaded `attachment`), or an edit,
    delete, react, unreact or preview of message `target`. `by_staff`: a
    delete by site staff in the admin, whatever room it is in (never set by
    what a client sends)."""

    room_id: int
    actor: Actor
    body: str
    client_id: UUID
    kind: EntryKind = EntryKind.MESSAGE
    target: int | None = None
    reply_to: int | None = None
    attachment: int | None = None
    by_staff: bool = False


Stored = tuple[Message, bool] | protocol.ChatError
# The entries about a message that carry its text (an edit's new text, a
# preview's URL): a delete erases them with it.
TEXT_BEARING = (EntryKind.EDIT, EntryKind.PREVIEW)
# What a user blocked in a DM may still do there: take back what they wrote.
UNDOING = (EntryKind.DELETE, EntryKind.UNREACT)


def messages_store(*, appends: list[StreamAppend]) -> list[Stored]:
    """Append entries to rooms' streams in one transaction; per entry, returns
    (entry, created) or the ChatError that refused it (the others stand).

    Each room row is locked (in pk order, so two writers cannot deadlock), its
    last_seq bumped once per new entry and the entries inserted together, so
    seqs are gapless and in commit order (an auto-increment id is not: ids can
    commit out of order). A client_id already stored in the room gets that
    entry instead, so a resend is acknowledged with its first seq. An edit,
    delete or reaction also changes message `target` (or its reactions), in
    the same transaction.
    """
    try:
        with transaction.atomic():
            return _append(appends)
    except IntegrityError:
        if len(appends) == 1:
            # The unique (room, client_id) constraint backs the lookup in
            # _append; if a duplicate ever got past the lock, the first copy wins.
            append = appends[0]
            existing = Message.objects.filter(
                room_id=append.room_id, client_id=append.client_id
            ).first()
            if existing is None:
                raise
            return [same_author(existing, append.actor)]
        return [messages_store(appends=[append])[0] for append in appends]


class StreamRoomFacts(RoomFacts, Protocol):
    """A room row as both writers read it under its lock."""

    @property
    def slug(self) -> str: ...


def append_refusal(
    append: StreamAppend,
    *,
    rooms: Mapping[int, StreamRoomFacts],
    members: Container[tuple[int, int | None]],
    sanctions: Mapping[tuple[int, int], SanctionFacts],
    blocked: Container[tuple[int, int | None]],
) -> protocol.ChatError | None:
    """Why an entry may not be appended, from the facts read under its room's
    lock (chat/access.py): the rooms by id, and (room id, user id) pairs of
    members, sanctions in force and users blocked in a DM. Both writers (the
    ORM's and stream_pg's) ask this."""
    room = rooms.get(append.room_id)
    slug = room.slug if room is not None else f"#{append.room_id}"
    pair = (append.room_id, append.actor.user_id)
    refusal = room_refusal(
        room=room,
        slug=slug,
        member=pair in members,
        sanction=sanctions.get((append.room_id, append.actor.user_id or 0)),
        guest_writing=append.actor.guest,
    )
    if refusal and not (append.by_staff and room is not None):
        return refusal
    if room is None:
        return refusal  # a missing room is refused, even to staff
    return dm_blocked_refusal(blocked=pair in blocked, undoing=append.kind in UNDOING)


def _append(appends: list[StreamAppend]) -> list[Stored]:
    room_ids = sorted({a.room_id for a in appends})
    rooms = {
        room.pk: room
        for room in Room.objects.select_for_update()
        .filter(pk__in=room_ids)
        .order_by("pk")
        .only("slug", "private", "kind", "guests_can_write", "last_seq")
    }
    # Access is checked here, under the room's lock: a member removed a moment
    # ago cannot write, whatever a cache said about the room.
    private = [pk for pk, room in rooms.items() if room.private]
    users = {a.actor.user_id for a in appends if a.actor.user_id is not None}
    members = set(
        Membership.objects.filter(room_id__in=private, user_id__in=users).values_list(
            "room_id", "user_id"
        )
        if private and users
        else ()
    )
    sanctions = {
        (s.room_id, s.user_id): s
        for s in (
            Sanction.objects.filter(sanctions_active(), room_id__in=room_ids, user_id__in=users)
            if users
            else ()
        )
    }
    # (DM, user) pairs where a member of the DM blocked the user.
    dms = [pk for pk, room in rooms.items() if room.kind == Room.Kind.DM]
    blocked = set(
        Membership.objects.filter(room_id__in=dms, user__blocks__blocked_id__in=users).values_list(
            "room_id", "user__blocks__blocked_id"
        )
        if dms and users
        else ()
    )
    stored = {
        (m.room_id, m.client_id): m
        for m in Message.objects.filter(
            room_id__in=room_ids, client_id__in={a.client_id for a in appends}
        )
    }
    results: list[Stored] = []
    new: list[Message] = []
    for append in appends:
        key = (append.room_id, append.client_id)
        try:
            if key in stored:
                results.append(same_author(stored[key], append.actor))
                continue
            refusal = append_refusal(
                append, rooms=rooms, members=members, sanctions=sanctions, blocked=blocked
            )
            if refusal:
                raise refusal
            room = rooms[append.room_id]  # a missing room is refused, even to staff
            slug = room.slug
            if append.kind == EntryKind.MESSAGE:
                if append.reply_to is not None:
                    _message_get(append.room_id, append.reply_to)
                if append.attachment is not None:
                    _attachment_take(append, attachment=append.attachment)
            elif append.target is None:
                raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "name the message: seq")
            else:
                _target_change(append, seq=append.target, slug=slug, private=room.private)
        except protocol.ChatError as error:
            results.append(error)
            continue
        room.last_seq += 1
        stored[key] = entry = entry_make(append, seq=room.last_seq)
        new.append(entry)
        results.append((entry, True))
    if new:
        Message.objects.bulk_create(new)
        _mentions_store(new, private=set(private))
        for room_id in {entry.room_id for entry in new}:
            Room.objects.filter(pk=room_id).update(last_seq=rooms[room_id].last_seq)
        metrics.MESSAGES_STORED.inc(len(new))
    return results


def entry_make(append: StreamAppend, *, seq: int) -> Message:
    """The new stream entry an append makes, with its seq (not saved)."""
    return Message(
        room_id=append.room_id,
        seq=seq,
        kind=append.kind,
        target=append.target,
        author=append.actor.user,
        author_name=append.actor.name,
        body=append.body,
        client_id=append.client_id,
        reply_to=append.reply_to,
        attachment_id=append.attachment,
    )


def _mentions_store(entries: list[Message], *, private: set[int]) -> None:
    """Record who each message (new, or as just edited) @-names: active users
    who may read its room (members, for a private room), its author aside."""
    named = [
        (entry, name)
        for entry in entries
        if entry.kind == EntryKind.MESSAGE and "@" in entry.body
        for name in protocol.mentioned_names(entry.body)
    ]
    if not named:
        return
    users = dict(
        get_user_model()
        .objects.filter(username__in={name for _, name in named}, is_active=True)
        .values_list("username", "pk")
    )
    blocking = set(
        Block.objects.filter(
            user_id__in=users.values(), blocked_id__in={entry.author_id for entry, _ in named}
        ).values_list("user_id", "blocked_id")
        if users
        else ()
    )
    rooms = {entry.room_id for entry, _ in named} & private
    members = set(
        Membership.objects.filter(room_id__in=rooms, user_id__in=users.values()).values_list(
            "room_id", "user_id"
        )
    )
    Mention.objects.bulk_create(
        [
            Mention(room_id=entry.room_id, seq=entry.seq, user_id=users[name])
            for entry, name in named
            if name in users
            and users[name] != entry.author_id
            and (users[name], entry.author_id) not in blocking
            and (entry.room_id not in private or (entry.room_id, users[name]) in members)
        ],
        ignore_conflicts=True,
    )


def message_store(
    *,
    room_id: int,
    actor: Actor,
    body: str,
    client_id: UUID,
    kind: EntryKind = EntryKind.MESSAGE,
    target: int | None = None,
    reply_to: int | None = None,
    attachment: int | None = None,
    by_staff: bool = False,
) -> tuple[Message, bool]:
    """Append one entry (see StreamAppend) in a transaction of its own;
    returns (entry, created), or raises the ChatError that refused it."""
    append = StreamAppend(
        room_id=room_id,
        actor=actor,
        body=body,
        client_id=client_id,
        kind=kind,
        target=target,
        reply_to=reply_to,
        attachment=attachment,
        by_staff=by_staff,
    )
    [result] = messages_store(appends=[append])
    if isinstance(result, protocol.ChatError):
        raise result
    return result


def _message_get(room_id: int, seq: int) -> Message:
    message = Message.objects.filter(room_id=room_id, seq=seq, kind=EntryKind.MESSAGE).first()
    if message is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no message {seq} in this room")
    return message


def _attachment_take(append: StreamAppend, *, attachment: int) -> None:
    """Attach the actor's upload to the message being appended, or refuse."""
    taken = append.actor.user is not None and Attachment.objects.filter(
        pk=attachment,
        room_id=append.room_id,
        uploader=append.actor.user,
        attached=False,
    ).update(attached=True)
    if not taken:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            f"attachment {attachment} is not an unsent upload of yours to this room",
        )


def _manages(append: StreamAppend, *, slug: str) -> bool:
    room = Room(pk=append.room_id, slug=slug)
    return role_get(room=room, user=append.actor.user) in MANAGERS


def _target_change(append: StreamAppend, *, seq: int, slug: str, private: bool) -> None:
    """Apply an edit, delete or reaction to message `seq` (the target), or refuse it."""
    actor = append.actor
    message = _message_get(append.room_id, seq)
    if message.deleted:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, f"message {seq} was deleted")
    if append.kind in (EntryKind.REACT, EntryKind.UNREACT):
        _reaction_change(append, seq=seq)
        return
    if append.kind == EntryKind.PREVIEW:
        return  # appended by the preview job, on the author's behalf
    author = actor.user is not None and message.author_id == actor.user_id
    if not author:
        # Moderators (and staff, in the admin) delete anyone's message; that
        # goes in the audit log.
        deleting = append.kind == EntryKind.DELETE
        manager = deleting and (append.by_staff or _manages(append, slug=slug))
        if refusal := message_change_refusal(author=False, deleting=deleting, manager=manager):
            raise refusal
        moderation_log_record_delete(message=message, slug=slug, actor=actor)
    if append.kind == EntryKind.DELETE:
        Reaction.objects.filter(room_id=append.room_id, seq=seq).delete()
        if message.attachment_id is not None:
            attachments_delete(ids=[message.attachment_id])
        # Its edits hold the text too, and history, `since`, exports and
        # search read them: a deleted message leaves no text anywhere.
        Message.objects.filter(room_id=append.room_id, target=seq, kind__in=TEXT_BEARING).update(
            body="", deleted=True
        )
    if "@" in message.body:  # only then can it have mentions
        Mention.objects.filter(room_id=append.room_id, seq=seq).delete()
    message.edited = timezone.now()
    message.deleted = append.kind == EntryKind.DELETE
    message.body = append.body
    message.save(update_fields=["edited", "deleted", "body"])
    if append.kind == EntryKind.EDIT:
        # Who is mentioned follows the text as it now reads.
        _mentions_store([message], private={append.room_id} if private else set())


def _reaction_change(append: StreamAppend, *, seq: int) -> None:
    """Put or take away the user's emoji on message `seq` (already in that
    state: nothing changes)."""
    user = append.actor.user
    if refusal := reaction_refusal(guest=user is None):
        raise refusal
    assert user is not None  # else refused
    mine = Reaction.objects.filter(room_id=append.room_id, seq=seq, user=user, emoji=append.body)
    if append.kind == EntryKind.UNREACT:
        mine.delete()
        return
    if mine.exists():
        return
    on_message = Reaction.objects.filter(room_id=append.room_id, seq=seq)
    emoji = set(on_message.values_list("emoji", flat=True).distinct())
    if append.body not in emoji and len(emoji) >= protocol.MAX_EMOJI_PER_MESSAGE:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            f"a message may have at most {protocol.MAX_EMOJI_PER_MESSAGE} different emoji",
        )
    Reaction.objects.create(room_id=append.room_id, seq=seq, user=user, emoji=append.body)
    Message.objects.filter(room_id=append.room_id, seq=seq, reacted=False).update(reacted=True)


def same_author(message: Message, actor: Actor) -> tuple[Message, bool]:
    if message.author_id != actor.user_id or message.author_name != actor.name:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST, "client_id already used by another author"
        )
    return message, False


messages_store_async = database_sync_to_async(messages_store)

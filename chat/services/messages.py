"""Sending messages: gapless per-room seq, idempotent by client_id, broadcast after commit."""

import asyncio
import dataclasses
import weakref
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import events, metrics, protocol
from chat.access import (
    MANAGERS,
    dm_blocked_refusal,
    message_change_refusal,
    reaction_refusal,
    room_refusal,
)
from chat.actor import Actor
from chat.models import Attachment, Block, Membership, Mention, Message, Reaction, Room, Sanction
from chat.selectors.messages import message_frames
from chat.selectors.rooms import room_get_readable, sanctions_active
from chat.services.attachments import attachments_delete
from chat.services.broadcast import job_enqueue, room_broadcast
from chat.services.limits import send_allow
from chat.services.moderation import moderation_log_delete


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
    kind: str = Message.Kind.MESSAGE
    target: int | None = None
    reply_to: int | None = None
    attachment: int | None = None
    by_staff: bool = False


Stored = tuple[Message, bool] | protocol.ChatError
# What a user blocked in a DM may still do there: take back what they wrote.
UNDOING = (Message.Kind.DELETE, Message.Kind.UNREACT)


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
            return [_same_author(existing, append.actor)]
        return [messages_store(appends=[append])[0] for append in appends]


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
                results.append(_same_author(stored[key], append.actor))
                continue
            room = rooms.get(append.room_id)
            member = (append.room_id, append.actor.user_id) in members
            slug = room.slug if room is not None else f"#{append.room_id}"
            sanction = sanctions.get((append.room_id, append.actor.user_id))
            refusal = room_refusal(
                room=room, slug=slug, member=member, sanction=sanction,
                guest_writing=append.actor.guest,
            )  # fmt: skip
            if refusal and not (append.by_staff and room is not None):
                raise refusal
            if refusal := dm_blocked_refusal(
                blocked=(append.room_id, append.actor.user_id) in blocked,
                undoing=append.kind in UNDOING,
            ):
                raise refusal
            if append.kind == Message.Kind.MESSAGE:
                if append.reply_to is not None:
                    _message_get(append.room_id, append.reply_to)
                if append.attachment is not None:
                    _attachment_take(append)
            else:
                _target_change(append, slug=slug, private=room.private)
        except protocol.ChatError as error:
            results.append(error)
            continue
        room.last_seq += 1
        stored[key] = entry = Message(
            room_id=append.room_id,
            seq=room.last_seq,
            kind=append.kind,
            target=append.target,
            author=append.actor.user,
            author_name=append.actor.name,
            body=append.body,
            client_id=append.client_id,
            reply_to=append.reply_to,
            attachment_id=append.attachment,
        )
        new.append(entry)
        results.append((entry, True))
    if new:
        Message.objects.bulk_create(new)
        _mentions_store(new, private=set(private))
        for room_id in {entry.room_id for entry in new}:
            Room.objects.filter(pk=room_id).update(last_seq=rooms[room_id].last_seq)
        metrics.MESSAGES_STORED.inc(len(new))
    return results


def _mentions_store(entries: list[Message], *, private: set[int]) -> None:
    """Record who each message (new, or as just edited) @-names: active users
    who may read its room (members, for a private room), its author aside."""
    named = [
        (entry, name)
        for entry in entries
        if entry.kind == Message.Kind.MESSAGE and "@" in entry.body
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


def message_store(**append) -> tuple[Message, bool]:
    """Append one entry (the fields of StreamAppend) in a transaction of its own;
    returns (entry, created), or raises the ChatError that refused it."""
    [result] = messages_store(appends=[StreamAppend(**append)])
    if isinstance(result, protocol.ChatError):
        raise result
    return result


def _message_get(room_id: int, seq: int) -> Message:
    message = Message.objects.filter(room_id=room_id, seq=seq, kind=Message.Kind.MESSAGE).first()
    if message is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no message {seq} in this room")
    return message


def _attachment_take(append: StreamAppend) -> None:
    """Attach the actor's upload to the message being appended, or refuse."""
    taken = Attachment.objects.filter(
        pk=append.attachment,
        room_id=append.room_id,
        uploader_id=append.actor.user_id,
        attached=False,
    ).update(attached=True)
    if not taken or append.actor.user is None:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            f"attachment {append.attachment} is not an unsent upload of yours to this room",
        )


def _manages(append: StreamAppend) -> bool:
    return Membership.objects.filter(
        room_id=append.room_id, user_id=append.actor.user_id, role__in=MANAGERS
    ).exists()


def _target_change(append: StreamAppend, *, slug: str, private: bool) -> None:
    """Apply an edit, delete or reaction to message `target`, or refuse it."""
    seq, actor = append.target, append.actor
    message = _message_get(append.room_id, seq)
    if message.deleted:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, f"message {seq} was deleted")
    if append.kind in (Message.Kind.REACT, Message.Kind.UNREACT):
        _reaction_change(append)
        return
    if append.kind == Message.Kind.PREVIEW:
        return  # appended by the preview job, on the author's behalf
    author = actor.user is not None and message.author_id == actor.user_id
    if not author:
        # Moderators (and staff, in the admin) delete anyone's message; that
        # goes in the audit log.
        deleting = append.kind == Message.Kind.DELETE
        manager = deleting and (append.by_staff or _manages(append))
        if refusal := message_change_refusal(author=False, deleting=deleting, manager=manager):
            raise refusal
        moderation_log_delete(message=message, slug=slug, actor=actor)
    if append.kind == Message.Kind.DELETE:
        Reaction.objects.filter(room_id=append.room_id, seq=seq).delete()
        if message.attachment_id is not None:
            attachments_delete(ids=[message.attachment_id])
    if "@" in message.body:  # only then can it have mentions
        Mention.objects.filter(room_id=append.room_id, seq=seq).delete()
    message.edited = timezone.now()
    message.deleted = append.kind == Message.Kind.DELETE
    message.body = append.body
    message.save(update_fields=["edited", "deleted", "body"])
    if append.kind == Message.Kind.EDIT:
        # Who is mentioned follows the text as it now reads.
        _mentions_store([message], private={append.room_id} if private else set())


def _reaction_change(append: StreamAppend) -> None:
    """Put or take away the user's emoji on message `target` (already in that
    state: nothing changes)."""
    if refusal := reaction_refusal(guest=append.actor.guest):
        raise refusal
    mine = Reaction.objects.filter(
        room_id=append.room_id, seq=append.target, user_id=append.actor.user_id, emoji=append.body
    )
    if append.kind == Message.Kind.UNREACT:
        mine.delete()
        return
    if mine.exists():
        return
    on_message = Reaction.objects.filter(room_id=append.room_id, seq=append.target)
    emoji = set(on_message.values_list("emoji", flat=True).distinct())
    if append.body not in emoji and len(emoji) >= protocol.MAX_EMOJI_PER_MESSAGE:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            f"a message may have at most {protocol.MAX_EMOJI_PER_MESSAGE} different emoji",
        )
    Reaction.objects.create(
        room_id=append.room_id, seq=append.target, user=append.actor.user, emoji=append.body
    )
    Message.objects.filter(room_id=append.room_id, seq=append.target, reacted=False).update(
        reacted=True
    )


def _same_author(message: Message, actor: Actor) -> tuple[Message, bool]:
    if message.author_id != actor.user_id or message.author_name != actor.name:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST, "client_id already used by another author"
        )
    return message, False


messages_store_async = database_sync_to_async(messages_store)


class GroupCommit:
    """This event loop's writer: appends that arrive while a transaction is
    running wait, and go together in the next one (group commit).

    Under load, N concurrent sends cost one transaction and one disk flush
    instead of N; alone, a send goes at once. Each caller still gets its ack
    only after its own entry has committed.
    """

    MAX_BATCH = 200

    def __init__(self) -> None:
        self.waiting: list[tuple[StreamAppend, asyncio.Future]] = []
        self.task: asyncio.Task | None = None  # the writing task, while there is one

    async def store(self, append: StreamAppend) -> tuple[Message, bool]:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((append, future))
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[: self.MAX_BATCH]
                del self.waiting[: self.MAX_BATCH]
                try:
                    results = await messages_store_async(appends=[a for a, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue  # its caller went away; a resend gets the stored entry
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.task = None


_writers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit]" = (
    weakref.WeakKeyDictionary()
)


def _writer() -> GroupCommit:
    loop = asyncio.get_running_loop()
    if loop not in _writers:
        _writers[loop] = GroupCommit()
    return _writers[loop]


# Per event loop, slug -> room id: ids never change, so a send skips the
# lookup (access is checked in the transaction: _append). Bounded by the rooms
# this process's clients write to.
_room_ids: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, int]]" = (
    weakref.WeakKeyDictionary()
)


async def message_send(
    *,
    actor: Actor,
    slug: str,
    body: str,
    client_id: UUID,
    kind: str = Message.Kind.MESSAGE,
    target: int | None = None,
    reply_to: int | None = None,
    attachment: int | None = None,
    address: str | None = None,
) -> protocol.AckEvent:
    """Store and broadcast a stream entry (a message, maybe replying to
    `reply_to`, or an edit, delete, react or unreact of message `target`) from
    a client at `address`, within the send rates; the ack carries its seq.
    Resends are not re-broadcast."""
    room_ids = _room_ids.setdefault(asyncio.get_running_loop(), {})
    if slug not in room_ids:
        room_ids[slug] = (await room_get_readable(slug=slug, actor=actor)).pk
    await send_allow(actor=actor, address=address)
    append = StreamAppend(
        room_id=room_ids[slug], actor=actor, body=body, client_id=client_id, kind=kind,
        target=target, reply_to=reply_to, attachment=attachment,
    )  # fmt: skip
    try:
        entry, created = await _writer().store(append)
    except protocol.ChatError as error:
        if error.code != protocol.ErrorCode.NOT_FOUND:
            raise
        # The room may be gone, or made again under a new id: look it up afresh.
        room = await room_get_readable(slug=slug, actor=actor)
        room_ids[slug] = room.pk
        entry, created = await _writer().store(dataclasses.replace(append, room_id=room.pk))
    if created:
        [frame] = await message_frames([entry], room=slug)
        await room_broadcast(room=slug, frame=frame, seq=entry.seq)
        if kind == Message.Kind.MESSAGE and settings.CHAT_PREVIEWS and protocol.first_url(body):
            await job_enqueue(events.preview_fetch(room_id=entry.room_id, seq=entry.seq))
    return protocol.AckEvent(client_id=client_id, room=slug, seq=entry.seq)


def message_delete_by_staff(*, message: Message, staff: AbstractBaseUser) -> None:
    """Delete a message as site staff (the admin): a delete entry with the
    next seq, like a moderator's, in the audit log, and broadcast once the
    surrounding transaction commits. Raises the ChatError that refuses it."""
    entry, _ = message_store(
        room_id=message.room_id, actor=Actor(name=staff.get_username(), user=staff), body="",
        client_id=uuid4(), kind=Message.Kind.DELETE, target=message.seq, by_staff=True,
    )  # fmt: skip
    slug = Room.objects.values_list("slug", flat=True).get(pk=message.room_id)
    transaction.on_commit(lambda: async_to_sync(_entry_broadcast)(entry=entry, slug=slug))


async def _entry_broadcast(*, entry: Message, slug: str) -> None:
    [frame] = await message_frames([entry], room=slug)
    await room_broadcast(room=slug, frame=frame, seq=entry.seq)


@database_sync_to_async
def messages_expire(*, older_than: timedelta) -> int:
    """Erase the text (and attachments) of stream entries older than this;
    returns how many.

    The entries stay, marked deleted, so each room's seqs stay gapless and
    clients' gap detection holds.
    """
    expired = Message.objects.filter(created__lt=timezone.now() - older_than, deleted=False)
    attached = expired.exclude(attachment=None).values_list("attachment", flat=True)
    attachments_delete(ids=list(attached))
    return expired.update(body="", deleted=True)

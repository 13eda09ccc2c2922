"""Sending to a room: messages, edits, deletes and reactions, each a stream
entry (chat/services/stream.py) stored by this process's group commit,
acknowledged once durable and broadcast after its commit."""

import asyncio
import dataclasses
import time
from datetime import timedelta
from uuid import UUID, uuid4

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from chat import metrics, protocol
from chat.actor import Actor
from chat.lag import loop_lag
from chat.models import Message, Room
from chat.perloop import PerLoop
from chat.protocol import EntryKind
from chat.ratelimit import Hold
from chat.selectors.messages import message_frames
from chat.selectors.rooms import room_get_readable
from chat.services.attachments import attachments_delete
from chat.services.broadcast import on_commit_broadcast, room_broadcast
from chat.services.limits import send_rates_take
from chat.services.stream import TEXT_BEARING, StreamAppend, message_store
from chat.services.stream_pg import stream_append
from chat.taskqueue import task_enqueue_async

# A send waiting for the writer: the entry, its client's address, its socket's hold, its answer.
Waiting = tuple[StreamAppend, str | None, Hold | None, asyncio.Future]


class GroupCommit:
    """This event loop's writer: appends that arrive while a transaction is
    running wait, and go together in the next one (group commit).

    Under load, N concurrent sends cost one rate-limit call, one transaction
    and one disk flush instead of N; alone, a send goes at once. Each caller
    still gets its ack only after its own entry has committed. The queue is
    bounded in time: when the writer or the event loop is more than
    CHAT_MAX_SEND_LAG behind, a new send is refused (`overloaded`, with
    `retry_after`) rather than left to wait for seconds.
    """

    MAX_BATCH = 200

    def __init__(self) -> None:
        self.waiting: list[Waiting] = []
        self.since: float = 0.0  # when the oldest append still unwritten arrived
        self.task: asyncio.Task | None = None  # the writing task, while there is one

    def lag(self) -> float:
        """How far behind this writer (or its loop) is, in seconds."""
        behind = time.monotonic() - self.since if self.task is not None else 0.0
        return max(behind, loop_lag())

    def submit(
        self, append: StreamAppend, *, address: str | None = None, hold: Hold | None = None
    ) -> asyncio.Future:
        """Queue the append behind those submitted before it; the future is
        its (entry, created), or its refusal. Refused at once, the writer
        being too far behind (`overloaded`). `hold`: its socket's, so that a
        write of the socket refused for a while holds back its later ones,
        even those queued already."""
        if (lag := self.lag()) > settings.CHAT_MAX_SEND_LAG:
            metrics.OVERLOADED.inc()
            raise protocol.ChatError(
                protocol.ErrorCode.OVERLOADED,
                "the server is busy: send again after retry_after",
                retry_after=round(min(5.0, max(0.1, 2 * lag)), 3),
            )
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((append, address, hold, future))
        if self.task is None:
            self.since = time.monotonic()
            self.task = loop.create_task(self._write())
        return future

    async def store(
        self, append: StreamAppend, *, address: str | None = None, hold: Hold | None = None
    ) -> tuple[Message, bool]:
        """Take the send's rate, then store the append; raises its refusal."""
        return await self.submit(append, address=address, hold=hold)

    async def _write(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[: self.MAX_BATCH]
                del self.waiting[: self.MAX_BATCH]
                try:
                    results = await _batch_store(batch)
                except Exception as exc:
                    results = [exc] * len(batch)
                self.since = time.monotonic()  # those waiting arrived during the batch
                for (append, _, hold, future), result in zip(batch, results, strict=True):
                    if isinstance(result, protocol.ChatError) and hold is not None:
                        hold.refused(result, ref=str(append.client_id))  # before the next batch
                    if future.done():
                        continue  # its caller went away; a resend gets the stored entry
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.task = None


async def _batch_store(batch: list[Waiting]) -> list:
    """Take the batch's send rates (one call), then store what may go: not
    what its socket holds back (a write of it refused for a while)."""
    held: list[protocol.ChatError | None] = []
    for append, _, hold, _ in batch:
        try:
            if hold is not None:
                hold.check(ref=str(append.client_id))
            held.append(None)
        except protocol.ChatError as refusal:
            held.append(refusal)
    going = [item for item, refusal in zip(batch, held, strict=True) if refusal is None]
    rates = iter(await send_rates_take(senders=[(a.actor, address) for a, address, _, _ in going]))
    refusals = [refusal or next(rates) for refusal in held]
    allowed = [a for (a, _, _, _), refusal in zip(batch, refusals, strict=True) if refusal is None]
    stored = iter(await stream_append(appends=allowed) if allowed else [])
    return [next(stored) if refusal is None else refusal for refusal in refusals]


_writer = PerLoop(GroupCommit)
# Per event loop, slug -> room id: ids never change, so a send skips the
# lookup (access is checked in the transaction: _append). Bounded by the rooms
# this process's clients write to.
_room_ids: PerLoop[dict[str, int]] = PerLoop(dict)


async def _entry_submit(
    *,
    actor: Actor,
    slug: str,
    body: str,
    client_id: UUID,
    address: str | None,
    hold: Hold | None,
    kind: EntryKind = EntryKind.MESSAGE,
    target: int | None = None,
    reply_to: int | None = None,
    attachment: int | None = None,
) -> "asyncio.Task[protocol.AckEvent]":
    """Hand an entry (see StreamAppend) for room `slug` to this process's
    writer, behind those handed to it before; returns the task that stores
    it within the send rates, broadcasts it after its commit, and acks it. A
    resend gets the first seq and is not broadcast again."""
    room_ids = _room_ids.get()
    if slug not in room_ids:
        room_ids[slug] = (await room_get_readable(slug=slug, actor=actor)).pk
    append = StreamAppend(
        room_id=room_ids[slug],
        actor=actor,
        body=body,
        client_id=client_id,
        kind=kind,
        target=target,
        reply_to=reply_to,
        attachment=attachment,
    )
    stored = _writer.get().submit(append, address=address, hold=hold)
    finish = _entry_finish(append, stored, slug=slug, address=address, hold=hold)
    task = asyncio.get_running_loop().create_task(finish)
    _finishing.add(task)  # held until done: the loop keeps only a weak reference
    task.add_done_callback(_finishing.discard)
    return task


# Entries handed to the writer whose commit, broadcast and ack are to come:
# they run to the end even if their socket goes meanwhile (its room needs them).
_finishing: set[asyncio.Task] = set()


async def _entry_finish(
    append: StreamAppend,
    stored: asyncio.Future,
    *,
    slug: str,
    address: str | None,
    hold: Hold | None,
) -> protocol.AckEvent:
    try:
        entry, created = await stored
    except protocol.ChatError as error:
        if error.code != protocol.ErrorCode.NOT_FOUND:
            raise
        # The room may be gone, or made again under a new id: look it up afresh.
        room = await room_get_readable(slug=slug, actor=append.actor)
        _room_ids.get()[slug] = room.pk
        retry = dataclasses.replace(append, room_id=room.pk)
        entry, created = await _writer.get().store(retry, address=address, hold=hold)
    if created:
        await _entry_broadcast(entry=entry, slug=slug)
        if (
            append.kind == EntryKind.MESSAGE
            and settings.CHAT_PREVIEWS
            and protocol.first_url(append.body)
        ):
            await task_enqueue_async(
                "chat.tasks.preview_attach", room_id=entry.room_id, seq=entry.seq
            )
    return protocol.AckEvent(client_id=append.client_id, room=slug, seq=entry.seq)


async def message_submit(
    *,
    actor: Actor,
    slug: str,
    body: str,
    client_id: UUID,
    reply_to: int | None = None,
    attachment: int | None = None,
    address: str | None = None,
    hold: Hold | None = None,
) -> "asyncio.Task[protocol.AckEvent]":
    """`message_send`, handed to the writer and left to run: the task is its
    ack. A socket submits its next message while this one is being
    committed, and the two keep their order."""
    return await _entry_submit(
        actor=actor,
        slug=slug,
        body=body,
        client_id=client_id,
        address=address,
        hold=hold,
        reply_to=reply_to,
        attachment=attachment,
    )


async def message_send(
    *,
    actor: Actor,
    slug: str,
    body: str,
    client_id: UUID,
    reply_to: int | None = None,
    attachment: int | None = None,
    address: str | None = None,
) -> protocol.AckEvent:
    """Send a message from a client at `address`, maybe replying to message
    `reply_to`, maybe holding the actor's upload `attachment`."""
    return await (
        await message_submit(
            actor=actor,
            slug=slug,
            body=body,
            client_id=client_id,
            reply_to=reply_to,
            attachment=attachment,
            address=address,
        )
    )


async def message_edit(
    *,
    actor: Actor,
    slug: str,
    seq: int,
    body: str,
    client_id: UUID,
    address: str | None = None,
    hold: Hold | None = None,
) -> protocol.AckEvent:
    """Change the text of message `seq`, which the actor wrote."""
    return await (
        await _entry_submit(
            actor=actor,
            slug=slug,
            body=body,
            client_id=client_id,
            address=address,
            hold=hold,
            kind=EntryKind.EDIT,
            target=seq,
        )
    )


async def message_delete(
    *,
    actor: Actor,
    slug: str,
    seq: int,
    client_id: UUID,
    address: str | None = None,
    hold: Hold | None = None,
) -> protocol.AckEvent:
    """Delete message `seq`: the actor's own, or anyone's for a moderator (logged)."""
    return await (
        await _entry_submit(
            actor=actor,
            slug=slug,
            body="",
            client_id=client_id,
            address=address,
            hold=hold,
            kind=EntryKind.DELETE,
            target=seq,
        )
    )


async def reaction_set(
    *,
    actor: Actor,
    slug: str,
    seq: int,
    emoji: str,
    on: bool,
    client_id: UUID,
    address: str | None = None,
    hold: Hold | None = None,
) -> protocol.AckEvent:
    """Put the actor's `emoji` on message `seq` (`on`), or take it away."""
    return await (
        await _entry_submit(
            actor=actor,
            slug=slug,
            body=emoji,
            client_id=client_id,
            address=address,
            hold=hold,
            kind=EntryKind.REACT if on else EntryKind.UNREACT,
            target=seq,
        )
    )


def message_delete_by_staff(*, message: Message, staff: User) -> None:
    """Delete a message as site staff (the admin): a delete entry with the
    next seq, like a moderator's, in the audit log, and broadcast once the
    surrounding transaction commits. Raises the ChatError that refuses it."""
    entry, _ = message_store(
        room_id=message.room_id,
        actor=Actor(name=staff.get_username(), user=staff),
        body="",
        client_id=uuid4(),
        kind=EntryKind.DELETE,
        target=message.seq,
        by_staff=True,
    )
    slug = Room.objects.values_list("slug", flat=True).get(pk=message.room_id)
    on_commit_broadcast(_entry_broadcast, entry=entry, slug=slug)


async def _entry_broadcast(*, entry: Message, slug: str) -> None:
    [frame] = await message_frames([entry], room=slug)
    await room_broadcast(
        room=slug, frame=frame, seq=entry.seq, target=entry.target, kind=entry.kind
    )


async def messages_expire(*, older_than: timedelta) -> int:
    """Erase the text (and attachments) of stream entries older than this;
    returns how many.

    The entries stay, marked deleted, so each room's seqs stay gapless and
    clients' gap detection holds.
    """
    return await _messages_expire(older_than=older_than)


@database_sync_to_async
def _messages_expire(*, older_than: timedelta) -> int:
    cutoff = timezone.now() - older_than
    expired = Message.objects.filter(created__lt=cutoff, deleted=False)
    attached = expired.exclude(attachment=None).values_list("attachment", flat=True)
    attachments_delete(ids=list(attached))
    # A newer edit of an expired message holds its text too: it goes with it.
    of_expired = Message.objects.filter(
        room=OuterRef("room"), seq=OuterRef("target"), kind=EntryKind.MESSAGE, created__lt=cutoff
    )
    about = Message.objects.filter(Exists(of_expired), kind__in=TEXT_BEARING, deleted=False)
    with transaction.atomic():
        erased = about.update(body="", deleted=True)
        return erased + expired.update(body="", deleted=True)

"""Room exports: a zip of a room's stream (messages.json), a readable page
(index.html) and its attachments, or of everything one user wrote.

`export_request` records the export and enqueues `export_build`, which
writes the zip in batches of BATCH entries, telling the requester's sockets
how far it got after each (`export` frames). The requester alone downloads
it, until it expires after CHAT_EXPORT_DAYS and `exports_expire` removes it.

A room's export follows the rule of reading it: its owner asks for it, or
someone with the permission to export any room (compliance), which writes
an entry in the room's audit log. Exports are bounded: one being built per
user and per room, CHAT_EXPORTS_PER_HOUR per user, and CHAT_EXPORT_MAX_BYTES
of stored zips per user.

A build holds the export for LEASE, renewed each batch: another delivery of
the task (a duplicate, or a redelivery while it runs) waits for the lease to
end rather than build it twice; one whose worker died takes it over then.
"""

import json
import logging
import shutil
import tempfile
import uuid
import zipfile
from datetime import timedelta
from typing import IO, Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.html import escape

from chat import access, protocol
from chat.actor import Actor
from chat.models import Export, Membership, Message, Room
from chat.protocol import ExportState
from chat.selectors.exports import export_out
from chat.selectors.rooms import role_get, room_get_readable
from chat.services.broadcast import user_frame_broadcast
from chat.services.limits import rate_take
from chat.services.moderation import audit_record_export
from chat.taskqueue import task_enqueue_async
from chat.uploads import name_safe

logger = logging.getLogger(__name__)

BATCH = 1000
LEASE = timedelta(seconds=15)


# An export still queued this long after it was asked for (its task lost
# with a broker) no longer counts as being built.
STALE = timedelta(hours=1)


async def export_request(*, user: User, slug: str | None) -> protocol.ExportEvent:
    """Ask for an export of room `slug` (its owner, or by the permission to
    export any room), or with no slug, of everything the user wrote. One of
    the user's being built already is returned instead of a second; past the
    limits, `rate_limited` or `too_large` with `retry_after`."""
    readable = False
    if slug is not None:
        try:
            await room_get_readable(slug=slug, actor=Actor(name=user.get_username(), user=user))
            readable = True
        except protocol.ChatError:
            pass  # decided with the other facts: export_refusal
    room, running = await _export_check(user=user, slug=slug, readable=readable)
    if running is not None:
        return export_out(running, slug=slug)
    per_minute = settings.CHAT_EXPORTS_PER_HOUR / 60
    await rate_take(
        buckets={f"exports:user:{user.pk}": (settings.CHAT_EXPORTS_BURST, per_minute)},
        detail="asking for exports too often",
    )
    export, created = await _export_create(user=user, room=room)
    if created:
        await task_enqueue_async("chat.tasks.export_build", export_id=str(export.pk))
    return export_out(export, slug=slug)


def _building() -> Q:
    return Q(state=ExportState.RUNNING) | Q(
        state=ExportState.QUEUED, created__gt=timezone.now() - STALE
    )


@database_sync_to_async
def _export_check(
    *, user: User, slug: str | None, readable: bool
) -> tuple[Room | None, Export | None]:
    """The room to export, if the user may, and the user's export of it being
    built, if there is one (returned instead of a second); else the refusal
    of the limits (checked again as the export is recorded)."""
    room = None
    if slug is not None:
        room = Room.objects.filter(slug=slug).first()
        role = role_get(room=room, user=user)
        any_room = user.has_perm("chat.export_any_room")
        if refusal := access.export_refusal(
            room=room, slug=slug, readable=readable, role=role, any_room=any_room
        ):
            raise refusal
    running = Export.objects.filter(_building(), requester=user, room=room).first()
    if running is None:
        _limits_check(user=user, room=room)
    return room, running


@database_sync_to_async
def _export_create(*, user: User, room: Room | None) -> tuple[Export, bool]:
    """Record the export, within the limits (checked again under the user's
    row lock, so two requests at once cannot both pass them); (export,
    created): one of the user's of the room being built is returned instead."""
    now = timezone.now()
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if same := Export.objects.filter(_building(), requester=user, room=room).first():
            return same, False
        _limits_check(user=user, room=room)
        expires = now + timedelta(days=settings.CHAT_EXPORT_DAYS)
        export = Export.objects.create(id=uuid.uuid4(), requester=user, room=room, expires=expires)
        if room is not None and role_get(room=room, user=user) != protocol.Role.OWNER:
            audit_record_export(room=room, user=user)  # by the permission to export any room
    return export, True


def _limits_check(*, user: User, room: Room | None) -> None:
    """Refuse a new export past the limits: one being built per room and per
    user (`rate_limited`), and the user's stored zips (`too_large`)."""
    now = timezone.now()
    building = Export.objects.filter(_building())
    if room is not None and (other := building.filter(room=room).first()) is not None:
        raise _busy(other, "an export of this room is being built: ask again once it is done")
    if (mine := building.filter(requester=user).first()) is not None:
        raise _busy(mine, "one export at a time: yours is being built")
    kept = Export.objects.filter(requester=user, expires__gt=now)
    used = kept.aggregate(total=Sum("size"))["total"] or 0
    if used + _estimate(user=user, room=room) > settings.CHAT_EXPORT_MAX_BYTES:
        first = kept.order_by("expires").values_list("expires", flat=True).first()
        raise protocol.ChatError(
            protocol.ErrorCode.TOO_LARGE,
            f"your exports would pass {settings.CHAT_EXPORT_MAX_BYTES} bytes:"
            " delete one, or wait until one expires",
            retry_after=(first - now).total_seconds() if first else None,
        )


def _busy(export: Export, detail: str) -> protocol.ChatError:
    held = (export.claimed_until - timezone.now()).total_seconds() if export.claimed_until else 0
    return protocol.ChatError(
        protocol.ErrorCode.RATE_LIMITED, detail, retry_after=round(max(5.0, held), 3)
    )


def _estimate(*, user: User, room: Room | None) -> int:
    """About how many bytes an export would take: its texts, its files, and
    what the JSON adds per entry."""
    entries = _entries(Export(requester=user, room=room))
    sums = entries.aggregate(text=Sum(Length("body")), files=Sum("attachment__size"), n=Count("pk"))
    return (sums["text"] or 0) + (sums["files"] or 0) + 300 * sums["n"]


async def export_delete(*, user: User, export_id: uuid.UUID) -> None:
    """Delete one of the user's exports (and its file): it no longer counts
    against their allowance. One being built is refused."""
    export = await Export.objects.filter(pk=export_id, requester=user).afirst()
    if export is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, "no such export")
    if export.state in (ExportState.QUEUED, ExportState.RUNNING):
        raise protocol.ChatError(protocol.ErrorCode.CONFLICT, "the export is being built")
    await database_sync_to_async(_export_remove)(export)


def _export_remove(export: Export) -> None:
    if export.file:
        default_storage.delete(export.file.name or "")
    export.delete()


def export_build(*, export_id: str) -> timedelta | None:
    """Build the export, unless it is built (or gone). Returns how long to
    wait if another worker holds it, for the caller to try again then."""
    now = timezone.now()
    claimable = Q(state=ExportState.QUEUED) | Q(state=ExportState.RUNNING, claimed_until__lt=now)
    if not Export.objects.filter(claimable, pk=export_id).update(
        state=ExportState.RUNNING, claimed_until=now + LEASE, done=0
    ):
        held = Export.objects.filter(pk=export_id, state=ExportState.RUNNING).first()
        return held.claimed_until - now if held and held.claimed_until else None
    export = Export.objects.select_related("room").get(pk=export_id)
    slug = export.room.slug if export.room else None
    try:
        with tempfile.TemporaryFile() as temporary:
            _zip_write(export, temporary, slug=slug)
            temporary.seek(0)
            name = default_storage.save(f"exports/{export.pk}.zip", File(temporary))
    except Exception:
        Export.objects.filter(pk=export_id).update(state=ExportState.FAILED)
        export.state = ExportState.FAILED
        _progress(export, slug=slug)
        raise
    export.file.name, export.state = name, ExportState.DONE
    export.size = default_storage.size(name)
    export.save(update_fields=["file", "state", "done", "size"])
    _progress(export, slug=slug)
    return None


def _entries(export: Export) -> QuerySet[Message]:
    if export.room is not None:
        return Message.objects.filter(room=export.room).order_by("seq")
    return Message.objects.filter(author=export.requester).order_by("room_id", "seq")


def _zip_write(export: Export, out: IO[bytes], *, slug: str | None) -> None:
    entries = _entries(export).select_related("room", "attachment")
    export.total = entries.count()
    Export.objects.filter(pk=export.pk).update(total=export.total)
    title = export.room.title if export.room else f"Everything {export.requester.username} wrote"
    attached: list[Message] = []
    # A zip is written one member at a time: the JSON and the page go to files first.
    with tempfile.TemporaryFile() as stream, tempfile.TemporaryFile() as page:
        stream.write(b"[")
        page.write(_page_head(title).encode())
        last = (0, 0)
        while batch := list(_after(entries, last)[:BATCH]):
            for entry in batch:
                stream.write(b"," if export.done else b"")
                stream.write(b"\n" + json.dumps(_entry(entry)).encode())
                page.write(_page_row(entry).encode())
                if entry.attachment is not None:
                    attached.append(entry)
                export.done += 1
            last = (batch[-1].room_id, batch[-1].seq)
            Export.objects.filter(pk=export.pk).update(
                done=export.done, claimed_until=timezone.now() + LEASE
            )
            _progress(export, slug=slug)
        stream.write(b"\n]\n")
        page.write(b"</ol></body></html>\n")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, source in (("messages.json", stream), ("index.html", page)):
                source.seek(0)
                with archive.open(name, "w") as target:
                    shutil.copyfileobj(source, target)
            for entry in attached:
                _attachment_copy(archive, entry)
            if export.room is None:
                archive.writestr("account.json", json.dumps(_account(export.requester), indent=1))


def _after(entries: QuerySet[Message], last: tuple[int, int]) -> QuerySet[Message]:
    room_id, seq = last
    return entries.filter(Q(room_id__gt=room_id) | Q(room_id=room_id, seq__gt=seq))


def _attachment_path(entry: Message) -> str:
    """Where an attachment goes in the zip: its name made safe to open from
    disk (an `x.html` of text is `x.html.txt`)."""
    attachment = entry.attachment
    assert attachment is not None
    return f"attachments/{attachment.pk}-{name_safe(attachment.name, attachment.content_type)}"


def _attachment_copy(archive: zipfile.ZipFile, entry: Message) -> None:
    assert entry.attachment is not None
    try:
        with default_storage.open(entry.attachment.file.name or "") as source:
            with archive.open(_attachment_path(entry), "w") as target:
                shutil.copyfileobj(source, target)
    except FileNotFoundError:
        logger.warning("export %s: attachment %s has no file", entry.room_id, entry.attachment.pk)


def _entry(entry: Message) -> dict[str, Any]:
    return {
        "room": entry.room.slug,
        "seq": entry.seq,
        "kind": entry.kind,
        "target": entry.target,
        "author": entry.author_name,
        "guest": entry.author_id is None,
        "body": "" if entry.deleted else entry.body,
        "created": entry.created.isoformat(),
        "edited": entry.edited.isoformat() if entry.edited else None,
        "deleted": entry.deleted,
        "reply_to": entry.reply_to,
        "attachment": _attachment_path(entry) if entry.attachment else None,
    }


def _page_head(title: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body{font:15px/1.4 system-ui,sans-serif;max-width:50em;margin:1em auto}"
        "li{margin:.4em 0;white-space:pre-wrap}time,.room{color:#666;font-size:.85em}</style>"
        f"</head><body><h1>{escape(title)}</h1><ol>"
    )


def _page_row(entry: Message) -> str:
    if entry.kind != Message.Kind.MESSAGE or entry.deleted:
        return ""  # the page shows messages as they are now; the JSON has every entry
    attachment = ""
    if entry.attachment is not None:
        path = escape(_attachment_path(entry))
        attachment = f' <a href="{path}">{escape(entry.attachment.name)}</a>'
    slug = escape(entry.room.slug)
    return (
        f'<li id="{slug}-{entry.seq}"><span class="room">#{slug}</span> '
        f'<time datetime="{entry.created.isoformat()}">{entry.created:%Y-%m-%d %H:%M}</time> '
        f"<b>{escape(entry.author_name)}</b>: {escape(entry.body)}{attachment}</li>"
    )


def _account(user: User) -> dict[str, Any]:
    rooms = Membership.objects.filter(user=user).select_related("room").order_by("room__slug")
    return {
        "username": user.username,
        "email": user.email,
        "joined": user.date_joined.isoformat(),
        "rooms": [
            {"room": m.room.slug, "role": m.role, "joined": m.joined.isoformat()} for m in rooms
        ],
    }


def _progress(export: Export, *, slug: str | None) -> None:
    frame = export_out(export, slug=slug)
    async_to_sync(user_frame_broadcast)(user_ids={export.requester_id}, frame=frame)


def exports_expire() -> int:
    """Remove expired exports and their files; returns how many."""
    expired = list(Export.objects.filter(expires__lte=timezone.now()))
    for export in expired:
        _export_remove(export)
    return len(expired)

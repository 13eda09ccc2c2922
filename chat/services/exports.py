"""Room exports: a zip of a room's stream (messages.json), a readable page
(index.html) and its attachments, or of everything one user wrote.

`export_request` records the export and enqueues `export_build`, which
writes the zip in batches of BATCH entries, telling the requester's sockets
how far it got after each (`export` frames). The requester alone downloads
it, until it expires after CHAT_EXPORT_DAYS and `exports_expire` removes it.

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
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.html import escape

from chat import access, protocol
from chat.models import Export, Membership, Message, Room
from chat.protocol import ExportState
from chat.selectors.exports import export_out
from chat.services.broadcast import user_frame_broadcast
from chatsite.celery import task_enqueue_async

logger = logging.getLogger(__name__)

BATCH = 1000
LEASE = timedelta(seconds=15)


async def export_request(*, user: User, slug: str | None) -> protocol.ExportEvent:
    """Ask for an export of room `slug` (its owner, or staff), or with no
    slug, of everything the user wrote. One being built already is returned
    instead of a second."""
    export, created = await _export_create(user=user, slug=slug)
    if created:
        await task_enqueue_async("chat.tasks.export_build", export_id=str(export.pk))
    return export_out(export, slug=slug)


@database_sync_to_async
def _export_create(*, user: User, slug: str | None) -> tuple[Export, bool]:
    room = None
    if slug is not None:
        room = Room.objects.filter(slug=slug).first()
        role = Membership.objects.filter(room=room, user=user).values_list("role", flat=True)
        refusal = access.export_refusal(
            room=room, slug=slug, role=role.first(), staff=user.is_staff
        )
        if refusal:
            raise refusal
    with transaction.atomic():
        export = (
            Export.objects.select_for_update()
            .filter(requester=user, room=room, state__in=[ExportState.QUEUED, ExportState.RUNNING])
            .first()
        )
        if export is not None:
            return export, False
        expires = timezone.now() + timedelta(days=settings.CHAT_EXPORT_DAYS)
        return Export.objects.create(
            id=uuid.uuid4(), requester=user, room=room, expires=expires
        ), True


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
    export.save(update_fields=["file", "state", "done"])
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
    assert entry.attachment is not None
    return f"attachments/{entry.attachment.pk}-{entry.attachment.name}"


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
        if export.file:
            default_storage.delete(export.file.name or "")
        export.delete()
    return len(expired)

"""Attachments: uploads typed by their bytes, capped in size, stored through
the default storage under a random name, and removed with their message (or
after a day, if no message took them)."""

import os
import uuid
from collections.abc import Iterable
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from chat import protocol, uploads
from chat.actor import Actor
from chat.models import Attachment, Room
from chat.selectors.attachments import attachment_out
from chat.selectors.rooms import room_get_writable
from chat.services.limits import send_rate_take

# How long an upload waits for the message that will hold it.
UNSENT_KEPT = timedelta(days=1)


def _name_clean(name: str, content_type: str) -> str:
    # The name as shown and offered for download: no path, no control
    # characters, and an extension of its type (uploads.name_safe).
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(char for char in base if char.isprintable() and char not in '"<>')
    return uploads.name_safe(cleaned.strip() or "file", content_type)


@database_sync_to_async
def _attachment_store(
    *,
    room: Room,
    actor: Actor,
    upload: UploadedFile,
    content_type: str,
    thumbnail: uploads.Thumbnail | None,
) -> Attachment:
    attachment = Attachment(
        room=room,
        uploader=actor.user,
        name=_name_clean(upload.name or "", content_type),
        content_type=content_type,
        size=upload.size or 0,
    )
    # A random storage name: nothing the client sent becomes a path.
    stem = uuid.uuid4().hex
    attachment.file.save(f"{stem}{uploads.EXTENSIONS[content_type]}", upload, save=False)
    if thumbnail is not None:
        attachment.width, attachment.height = thumbnail.width, thumbnail.height
        attachment.thumbnail.save(f"{stem}.thumb.webp", ContentFile(thumbnail.webp), save=False)
    attachment.save()
    return attachment


async def attachment_upload(
    *, actor: Actor, slug: str, upload: UploadedFile | None, address: str | None = None
) -> protocol.AttachmentOut:
    """Store a file for a message the actor will send to the room (within the
    send rates); its id goes in `send`'s `attachment`."""
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "sign in to upload files")
    room = await room_get_writable(slug=slug, actor=actor)
    if upload is None or not upload.size:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "file: send one non-empty file")
    if upload.size > settings.CHAT_MAX_UPLOAD_BYTES:
        raise protocol.ChatError(
            protocol.ErrorCode.TOO_LARGE,
            f"file: at most {settings.CHAT_MAX_UPLOAD_BYTES} bytes",
        )
    head = upload.read(2048)
    upload.seek(0)
    content_type = uploads.content_type_of(head)
    if content_type is None:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            "file: not a type allowed (PNG, JPEG, GIF, WebP, PDF, zip or UTF-8 text)",
        )
    thumbnail = None
    if content_type.startswith("image/"):
        try:
            thumbnail = await sync_to_async(uploads.image_thumbnail)(upload)
        except ValueError as exc:
            raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, f"file: {exc}") from None
    await send_rate_take(actor=actor, address=address)
    stored = await _attachment_store(
        room=room, actor=actor, upload=upload, content_type=content_type, thumbnail=thumbnail
    )
    return attachment_out(stored)


def attachments_delete(*, ids: Iterable[int]) -> int:
    """Remove attachments (with the messages that held them, or unsent): the
    rows now, the files once the transaction commits; returns how many."""
    rows = list(Attachment.objects.filter(pk__in=ids).values_list("pk", "file", "thumbnail"))
    names = [name for _, *files in rows for name in files if name]
    Attachment.objects.filter(pk__in=[pk for pk, *_ in rows]).delete()

    def files_delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(files_delete)
    return len(rows)


async def attachments_prune(*, older_than: timedelta = UNSENT_KEPT) -> int:
    """Remove uploads that no message took within `older_than` of their upload;
    returns how many."""
    return await _attachments_prune(older_than=older_than)


@database_sync_to_async
def _attachments_prune(*, older_than: timedelta) -> int:
    with transaction.atomic():
        # Locked, so a send taking one of them now either wins (and the upload
        # is no longer unsent) or waits, and is refused once it is gone.
        unsent = Attachment.objects.select_for_update(skip_locked=True).filter(
            attached=False, created__lt=timezone.now() - older_than
        )
        return attachments_delete(ids=list(unsent.values_list("pk", flat=True)))

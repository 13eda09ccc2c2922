"""Reading exports: their progress, and the file, for the user who asked only."""

import uuid

from django.contrib.auth.models import User
from django.utils import timezone

from chat import protocol
from chat.models import Export
from chat.protocol import ExportState


def export_out(export: Export, *, slug: str | None) -> protocol.ExportEvent:
    done = export.state == ExportState.DONE
    return protocol.ExportEvent(
        id=export.pk,
        room=slug,
        state=ExportState(export.state),
        done=export.done,
        total=export.total,
        url=f"/api/v1/exports/{export.pk}/file" if done else None,
        expires=export.expires,
    )


async def export_get(*, user: User, export_id: uuid.UUID) -> Export:
    """The user's own export (with its room), or not_found: nobody else's exists for them."""
    export = (
        await Export.objects.select_related("room")
        .filter(pk=export_id, requester=user, expires__gt=timezone.now())
        .afirst()
    )
    if export is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, "no such export")
    return export


def exports_list(*, user: User) -> list[tuple[Export, protocol.ExportEvent]]:
    """The user's exports not yet expired, newest first."""
    exports = Export.objects.filter(requester=user, expires__gt=timezone.now())
    return [
        (export, export_out(export, slug=export.room.slug if export.room else None))
        for export in exports.select_related("room").order_by("-created")
    ]

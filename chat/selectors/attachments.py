"""Reading attachments."""

from urllib.parse import quote

from chat import protocol
from chat.actor import Actor
from chat.models import Attachment
from chat.selectors.rooms import room_get_readable


def attachment_out(attachment: Attachment) -> protocol.AttachmentOut:
    url = f"/attachments/{attachment.pk}/{quote(attachment.name)}"
    return protocol.AttachmentOut(
        id=attachment.pk,
        name=attachment.name,
        content_type=attachment.content_type,
        size=attachment.size,
        image=attachment.content_type.startswith("image/"),
        url=url,
        width=attachment.width,
        height=attachment.height,
        thumbnail_url=f"{url}?thumbnail" if attachment.thumbnail else None,
    )


async def attachment_get_readable(*, attachment_id: int, actor: Actor) -> Attachment:
    """An attachment, for those who may read its room once it is sent (before,
    for its uploader only); else not_found or forbidden."""
    attachment = await Attachment.objects.select_related("room").filter(pk=attachment_id).afirst()
    unsent = attachment is not None and not attachment.attached
    if attachment is None or (
        unsent and (actor.user_id is None or attachment.uploader_id != actor.user_id)
    ):
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, "no such attachment")
    await room_get_readable(slug=attachment.room.slug, actor=actor)
    return attachment

"""Link previews: the first URL of a message, unfurled off the send's path
(by the worker), cached per URL, and added to the room's stream as a
`preview` entry so that `since` recovers it like any change to a message."""

import logging
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils import timezone

from chat import protocol, unfurl
from chat.actor import Actor
from chat.models import LinkPreview, Message
from chat.protocol import EntryKind
from chat.selectors.messages import message_frames
from chat.selectors.previews import url_hash
from chat.services.broadcast import room_broadcast
from chat.services.stream import StreamAppend, messages_store_async

logger = logging.getLogger(__name__)

# A page's preview is fetched again after this long.
FRESH_FOR = timedelta(days=1)


async def preview_fetch(*, url: str) -> LinkPreview:
    """The cached preview of a URL, fetched (or refused) if it is missing or stale."""
    cached = await LinkPreview.objects.filter(url_hash=url_hash(url)).afirst()
    if cached is not None and cached.fetched > timezone.now() - FRESH_FOR:
        return cached
    fields = {"ok": False, "title": "", "description": "", "image": ""}
    try:
        page = await unfurl.unfurl(
            url,
            step_seconds=settings.CHAT_PREVIEW_TIMEOUT,
            max_bytes=settings.CHAT_PREVIEW_MAX_BYTES,
            allow=set(settings.CHAT_PREVIEW_ALLOW),
        )
        fields = {
            "ok": True,
            "title": page.title,
            "description": page.description,
            "image": page.image,
        }
    except (unfurl.Refused, TimeoutError, httpx.HTTPError) as exc:
        # The host only: a URL is part of a message, and messages stay out of logs.
        logger.info("no preview for a link to %s: %s", urlsplit(url).hostname, exc)
    preview, _ = await LinkPreview.objects.aupdate_or_create(
        url_hash=url_hash(url), defaults={"url": url, **fields}
    )
    return preview


async def preview_attach(*, room_id: int, seq: int) -> None:
    """Give message `seq` of a room the preview of its first URL: a `preview`
    entry in the stream, broadcast after its commit. Idempotent: the entry's
    client_id derives from the message's, so a repeated job stores nothing."""
    message = (
        await Message.objects.filter(
            room_id=room_id, seq=seq, kind=EntryKind.MESSAGE, deleted=False
        )
        .select_related("room", "author")
        .afirst()
    )
    url = message and protocol.first_url(message.body)
    if message is None or not url or not (await preview_fetch(url=url)).ok:
        return
    append = StreamAppend(
        room_id=room_id,
        actor=Actor(name=message.author_name, user=message.author),
        body=url,
        client_id=uuid.uuid5(message.client_id, "preview"),
        kind=EntryKind.PREVIEW,
        target=seq,
    )
    [stored] = await messages_store_async(appends=[append])
    if isinstance(stored, protocol.ChatError) or not stored[1]:
        return  # the message went away meanwhile, or a repeat
    [frame] = await message_frames([stored[0]], room=message.room.slug)
    await room_broadcast(room=message.room.slug, frame=frame, seq=stored[0].seq, target=seq)

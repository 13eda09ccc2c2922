"""Messages: history, posting, DMs, blocks, attachments, reactions, read
markers, mentions and search."""

import uuid

from ninja import File, Query, Router, Status, UploadedFile

from chat import protocol
from chat.api.common import AuthedRequest, Errors, actor
from chat.selectors import dms as dm_selectors
from chat.selectors.messages import history_page, mentions_page, messages_search
from chat.services.attachments import attachment_upload
from chat.services.dms import block_set, dm_send
from chat.services.messages import message_send, reaction_set
from chat.services.rooms import read_marker_set

router = Router()


@router.get(
    "/rooms/{slug}/messages", response={200: protocol.HistoryEvent, **Errors}, tags=["messages"]
)
async def messages_list(
    request: AuthedRequest, slug: protocol.Slug, cursor: Query[protocol.HistoryCursor]
):
    """A page of history, by seq: `before` pages back, `after` pages forward."""
    return await history_page(actor=actor(request), slug=slug, **cursor.model_dump())


@router.post(
    "/rooms/{slug}/messages", response={201: protocol.AckEvent, **Errors}, tags=["messages"]
)
async def message_create(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.MessagePost
):
    """Post a message; it reaches the room's sockets like one sent on a socket.
    Posting the same `client_id` again returns the first message's seq."""
    ack = await message_send(
        actor=actor(request),
        slug=slug,
        body=payload.body,
        client_id=payload.client_id,
        reply_to=payload.reply_to,
        attachment=payload.attachment,
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(201, ack)


@router.post("/dms", response={201: protocol.AckEvent, **Errors}, tags=["messages"])
async def dm_create(request: AuthedRequest, payload: protocol.DmPost):
    """Send a direct message to `users`: into the DM of exactly them and the
    caller, made on its first message. The ack names the DM's room."""
    ack = await dm_send(
        actor=actor(request),
        usernames=payload.users,
        body=payload.body,
        client_id=payload.client_id,
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(201, ack)


@router.get("/blocks", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"])
async def blocks_list(request: AuthedRequest):
    """Who the caller has blocked."""
    return await dm_selectors.blocks_list(user_id=request.auth.pk)


@router.put("/blocks/{username}", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"])
async def block_add(request: AuthedRequest, username: protocol.Username):
    """Block `username`: they may not write to a DM the caller is in, and their
    @-mentions do not reach the caller. Idempotent; the reply lists all blocked."""
    return await _block(request, username, on=True)


@router.delete(
    "/blocks/{username}", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"]
)
async def block_delete(request: AuthedRequest, username: protocol.Username):
    """Unblock `username`. Idempotent; the reply lists all blocked."""
    return await _block(request, username, on=False)


async def _block(request: AuthedRequest, username: str, *, on: bool) -> protocol.BlocksEvent:
    return await block_set(
        actor=actor(request), username=username, on=on, address=request.META.get("REMOTE_ADDR")
    )


@router.post(
    "/rooms/{slug}/attachments", response={201: protocol.AttachmentOut, **Errors}, tags=["messages"]
)
async def attachment_create(
    request: AuthedRequest,
    slug: protocol.Slug,
    file: File[UploadedFile] = None,  # type: ignore[assignment]  # None: no file sent
):
    """Upload a file (multipart, field `file`) for a message: its `id` goes in
    the message's `attachment`. Images, PDF, zip and text, up to
    CHAT_MAX_UPLOAD_BYTES (10 MiB); typed by content, not by name."""
    if getattr(request, "upload_too_large", False):
        raise protocol.ChatError(protocol.ErrorCode.TOO_LARGE, "file: the upload is too large")
    upload = await attachment_upload(
        actor=actor(request), slug=slug, upload=file, address=request.META.get("REMOTE_ADDR")
    )
    return Status(201, upload)


async def _react(request: AuthedRequest, slug: str, seq: int, emoji: str, *, on: bool):
    ack = await reaction_set(
        actor=actor(request),
        slug=slug,
        seq=seq,
        emoji=emoji,
        on=on,
        client_id=uuid.uuid4(),
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(200, ack)


@router.put(
    "/rooms/{slug}/messages/{seq}/reactions/{emoji}",
    response={200: protocol.AckEvent, **Errors},
    tags=["messages"],
)
async def reaction_add(
    request: AuthedRequest, slug: protocol.Slug, seq: protocol.TargetSeq, emoji: protocol.Emoji
):
    """React to message `seq` with `emoji` (URL-encoded). Idempotent: reacting
    twice is one reaction. The ack's seq is the react entry's."""
    return await _react(request, slug, seq, emoji, on=True)


@router.delete(
    "/rooms/{slug}/messages/{seq}/reactions/{emoji}",
    response={200: protocol.AckEvent, **Errors},
    tags=["messages"],
)
async def reaction_delete(
    request: AuthedRequest, slug: protocol.Slug, seq: protocol.TargetSeq, emoji: protocol.Emoji
):
    """Take away the caller's `emoji` from message `seq`. Idempotent."""
    return await _react(request, slug, seq, emoji, on=False)


@router.put("/rooms/{slug}/read", response={204: None, **Errors}, tags=["messages"])
async def read_marker_update(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.ReadMarker
):
    """Move the caller's read marker forward to `seq` (never back)."""
    await read_marker_set(actor=actor(request), slug=slug, seq=payload.seq)
    return Status(204, None)


@router.get("/mentions", response={200: protocol.MentionsEvent, **Errors}, tags=["messages"])
async def mentions_list(request: AuthedRequest, cursor: Query[protocol.MentionsCursor]):
    """The caller's mentions inbox: messages that @-named them, newest first;
    `before` (a message id) pages back."""
    return await mentions_page(actor=actor(request), **cursor.model_dump())


@router.get("/search", response={200: protocol.SearchEvent, **Errors}, tags=["messages"])
async def search_list(request: AuthedRequest, query: Query[protocol.SearchQuery]):
    """Messages matching `q` in the rooms the caller may read (or in `room`),
    newest first; `before` (a message id) pages back."""
    return await messages_search(actor=actor(request), **query.model_dump())

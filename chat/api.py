"""The HTTP API under /api/v1/, on django-ninja: each view validates its input
(with the schemas in chat/protocol.py) and calls one service or selector.

Requests authenticate with `Authorization: Bearer <token>`, or with the
session cookie and Django's CSRF token (for the browser). Errors have the
shape of the WebSocket `error` frame: `{"code", "detail", "retry_after"}`.
"""

import uuid

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import File, NinjaAPI, Query, Status, UploadedFile
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.responses import codes_4xx
from ninja.security import HttpBearer, SessionAuth

from chat import protocol, spec
from chat.actor import Actor
from chat.files import file_response
from chat.selectors import dms as dm_selectors
from chat.selectors import tokens as token_selectors
from chat.selectors.exports import export_get, export_out
from chat.selectors.messages import history_page, mentions_page, messages_search
from chat.selectors.moderation import moderation_log
from chat.selectors.rooms import room_get_visible, room_members, rooms_visible
from chat.services import rooms as room_services
from chat.services import tokens as token_services
from chat.services.attachments import attachment_upload
from chat.services.dms import block_set, dm_send
from chat.services.exports import export_delete, export_request
from chat.services.messages import message_send, reaction_set
from chat.services.moderation import room_moderate
from chat.services.rooms import (
    membership_invite,
    membership_remove,
    read_marker_set,
)
from chat.services.tokens import token_revoke


class BearerToken(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str):
        api_token = await token_selectors.token_get(secret=token)
        return None if api_token is None else api_token.user


class SessionCookie(SessionAuth):
    """The browser's session; Django's CSRF check applies once a session signs in."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None  # so a request with no credentials is 401, not a CSRF failure
        return super().__call__(request)


api = NinjaAPI(
    title="Chat HTTP API",
    version="1",
    description="Rooms, history, messages, read markers and API tokens. "
    "The WebSocket protocol is described by /api/v1/asyncapi.json.",
    auth=[BearerToken(), SessionCookie()],
    urls_namespace="api",
)
Errors = {codes_4xx: protocol.ApiError}
_CODE_OF_STATUS = {status: code for code, status in protocol.HTTP_STATUS.items()}


class AuthedRequest(HttpRequest):
    """A request past the API's auth: `auth` is the caller (for type checking)."""

    auth: User


def _actor(request: AuthedRequest) -> Actor:
    return Actor(name=request.auth.get_username(), user=request.auth)


def _error(error: protocol.ChatError) -> HttpResponse:
    body = protocol.ApiError(code=error.code, detail=error.detail, retry_after=error.retry_after)
    return HttpResponse(
        body.model_dump_json(),
        status=protocol.HTTP_STATUS[error.code],
        content_type="application/json",
    )


@api.exception_handler(protocol.ChatError)
def _chat_error(request: HttpRequest, exc: protocol.ChatError) -> HttpResponse:
    return _error(exc)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(protocol.error_from_validation(exc.errors))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Raised by django-ninja itself: a failed CSRF check, or a body that is not JSON.
    code = _CODE_OF_STATUS.get(exc.status_code, protocol.ErrorCode.BAD_REQUEST)
    return _error(protocol.ChatError(code, str(exc)))


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = "send Authorization: Bearer <token>, or sign in (with the CSRF token)"
    return _error(protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, detail))


# --- Rooms ------------------------------------------------------------------


@api.get("/rooms", response={200: list[protocol.RoomOut], **Errors}, tags=["rooms"])
async def rooms_list(request: AuthedRequest):
    """Public rooms and the private rooms the caller is a member of."""
    return await rooms_visible(user=request.auth)


@api.post("/rooms", response={201: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_create(request: AuthedRequest, payload: protocol.RoomCreate):
    """Create a room, with the caller as its owner. `conflict` if the slug is taken."""
    await room_services.room_create(creator=request.auth, **payload.model_dump())
    return Status(201, await room_get_visible(slug=payload.slug, actor=_actor(request)))


@api.get("/rooms/{slug}", response={200: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_get(request: AuthedRequest, slug: protocol.Slug):
    return await room_get_visible(slug=slug, actor=_actor(request))


@api.patch("/rooms/{slug}", response={200: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_update(request: AuthedRequest, slug: protocol.Slug, payload: protocol.RoomUpdate):
    """Change the title, the privacy, or whether guests may write: the room's
    owner or a moderator."""
    await room_services.room_update(
        slug=slug, user=request.auth, **payload.model_dump(exclude_unset=True)
    )
    return await room_get_visible(slug=slug, actor=_actor(request))


@api.get(
    "/rooms/{slug}/members", response={200: list[protocol.MemberOut], **Errors}, tags=["rooms"]
)
async def members_list(request: AuthedRequest, slug: protocol.Slug):
    return await room_members(slug=slug, actor=_actor(request))


@api.put("/rooms/{slug}/members/{username}", response={204: None, **Errors}, tags=["rooms"])
async def member_add(request: AuthedRequest, slug: protocol.Slug, username: str):
    """Make a user a member: the room's owner or a moderator. Idempotent."""
    await membership_invite(slug=slug, inviter=request.auth, username=username)
    return Status(204, None)


@api.delete("/rooms/{slug}/members/{username}", response={204: None, **Errors}, tags=["rooms"])
async def member_delete(request: AuthedRequest, slug: protocol.Slug, username: str):
    """Leave a room, or (owner or moderator) remove someone else."""
    await membership_remove(slug=slug, user=request.auth, username=username)
    return Status(204, None)


@api.post(
    "/rooms/{slug}/moderation", response={200: protocol.ModeratedEvent, **Errors}, tags=["rooms"]
)
async def moderation_create(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.Moderation
):
    """Kick, ban, unban, mute, unmute, promote or demote a user: the room's owner
    or a moderator (promote and demote: the owner). Logged; the room is told."""
    return await room_moderate(
        slug=slug,
        actor=_actor(request),
        moderation=payload,
        address=request.META.get("REMOTE_ADDR"),
    )


@api.get(
    "/rooms/{slug}/moderation",
    response={200: list[protocol.ModerationLogOut], **Errors},
    tags=["rooms"],
)
async def moderation_list(request: AuthedRequest, slug: protocol.Slug):
    """The room's audit log, newest first (100 entries): its owner and moderators."""
    return await moderation_log(slug=slug, actor=_actor(request))


# --- Messages and read markers ---------------------------------------------------


@api.get(
    "/rooms/{slug}/messages", response={200: protocol.HistoryEvent, **Errors}, tags=["messages"]
)
async def messages_list(
    request: AuthedRequest, slug: protocol.Slug, cursor: Query[protocol.HistoryCursor]
):
    """A page of history, by seq: `before` pages back, `after` pages forward."""
    return await history_page(actor=_actor(request), slug=slug, **cursor.model_dump())


@api.post("/rooms/{slug}/messages", response={201: protocol.AckEvent, **Errors}, tags=["messages"])
async def message_create(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.MessagePost
):
    """Post a message; it reaches the room's sockets like one sent on a socket.
    Posting the same `client_id` again returns the first message's seq."""
    ack = await message_send(
        actor=_actor(request),
        slug=slug,
        body=payload.body,
        client_id=payload.client_id,
        reply_to=payload.reply_to,
        attachment=payload.attachment,
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(201, ack)


@api.post("/dms", response={201: protocol.AckEvent, **Errors}, tags=["messages"])
async def dm_create(request: AuthedRequest, payload: protocol.DmPost):
    """Send a direct message to `users`: into the DM of exactly them and the
    caller, made on its first message. The ack names the DM's room."""
    ack = await dm_send(
        actor=_actor(request),
        usernames=payload.users,
        body=payload.body,
        client_id=payload.client_id,
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(201, ack)


@api.get("/blocks", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"])
async def blocks_list(request: AuthedRequest):
    """Who the caller has blocked."""
    return await dm_selectors.blocks_list(user_id=request.auth.pk)


@api.put("/blocks/{username}", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"])
async def block_add(request: AuthedRequest, username: protocol.Username):
    """Block `username`: they may not write to a DM the caller is in, and their
    @-mentions do not reach the caller. Idempotent; the reply lists all blocked."""
    return await _block(request, username, on=True)


@api.delete("/blocks/{username}", response={200: protocol.BlocksEvent, **Errors}, tags=["messages"])
async def block_delete(request: AuthedRequest, username: protocol.Username):
    """Unblock `username`. Idempotent; the reply lists all blocked."""
    return await _block(request, username, on=False)


async def _block(request: AuthedRequest, username: str, *, on: bool) -> protocol.BlocksEvent:
    return await block_set(
        actor=_actor(request), username=username, on=on, address=request.META.get("REMOTE_ADDR")
    )


@api.post(
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
        actor=_actor(request), slug=slug, upload=file, address=request.META.get("REMOTE_ADDR")
    )
    return Status(201, upload)


async def _react(request: AuthedRequest, slug: str, seq: int, emoji: str, *, on: bool):
    ack = await reaction_set(
        actor=_actor(request),
        slug=slug,
        seq=seq,
        emoji=emoji,
        on=on,
        client_id=uuid.uuid4(),
        address=request.META.get("REMOTE_ADDR"),
    )
    return Status(200, ack)


@api.put(
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


@api.delete(
    "/rooms/{slug}/messages/{seq}/reactions/{emoji}",
    response={200: protocol.AckEvent, **Errors},
    tags=["messages"],
)
async def reaction_delete(
    request: AuthedRequest, slug: protocol.Slug, seq: protocol.TargetSeq, emoji: protocol.Emoji
):
    """Take away the caller's `emoji` from message `seq`. Idempotent."""
    return await _react(request, slug, seq, emoji, on=False)


@api.put("/rooms/{slug}/read", response={204: None, **Errors}, tags=["messages"])
async def read_marker_update(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.ReadMarker
):
    """Move the caller's read marker forward to `seq` (never back)."""
    await read_marker_set(actor=_actor(request), slug=slug, seq=payload.seq)
    return Status(204, None)


@api.get("/mentions", response={200: protocol.MentionsEvent, **Errors}, tags=["messages"])
async def mentions_list(request: AuthedRequest, cursor: Query[protocol.MentionsCursor]):
    """The caller's mentions inbox: messages that @-named them, newest first;
    `before` (a message id) pages back."""
    return await mentions_page(actor=_actor(request), **cursor.model_dump())


@api.get("/search", response={200: protocol.SearchEvent, **Errors}, tags=["messages"])
async def search_list(request: AuthedRequest, query: Query[protocol.SearchQuery]):
    """Messages matching `q` in the rooms the caller may read (or in `room`),
    newest first; `before` (a message id) pages back."""
    return await messages_search(actor=_actor(request), **query.model_dump())


# --- Tokens -----------------------------------------------------------------------


@api.get("/tokens", response={200: list[protocol.TokenOut], **Errors}, tags=["tokens"])
async def tokens_list(request: AuthedRequest):
    return await token_selectors.tokens_list(user=request.auth)


@api.post("/tokens", response={201: protocol.TokenCreated, **Errors}, tags=["tokens"])
async def token_create(request: AuthedRequest, payload: protocol.TokenCreate):
    """Create a token. Its secret is in this reply only."""
    return Status(201, await token_services.token_create(user=request.auth, name=payload.name))


@api.delete("/tokens/{token_id}", response={204: None, **Errors}, tags=["tokens"])
async def token_delete(request: AuthedRequest, token_id: int):
    """Revoke a token: it no longer authenticates, and its open sockets close."""
    await token_revoke(user=request.auth, token_id=token_id)
    return Status(204, None)


# --- The WebSocket protocol's description -------------------------------------------


# --- Exports ------------------------------------------------------------------


@api.post("/rooms/{slug}/exports", response={202: protocol.ExportEvent, **Errors}, tags=["exports"])
async def room_export_create(request: AuthedRequest, slug: protocol.Slug):
    """Export the room (its owner, or staff): built in the background, with
    `export` frames to the caller's sockets; one being built is returned."""
    return Status(202, await export_request(user=request.auth, slug=slug))


@api.post("/exports", response={202: protocol.ExportEvent, **Errors}, tags=["exports"])
async def export_create(request: AuthedRequest):
    """Start an export of everything the caller wrote, in every room, with their account."""
    return Status(202, await export_request(user=request.auth, slug=None))


@api.get("/exports/{export_id}", response={200: protocol.ExportEvent, **Errors}, tags=["exports"])
async def export_status(request: AuthedRequest, export_id: uuid.UUID):
    """An export of the caller's: how far it got, and once done its file's `url`."""
    export = await export_get(user=request.auth, export_id=export_id)
    return export_out(export, slug=export.room.slug if export.room else None)


@api.get("/exports/{export_id}/file", response={200: None, **Errors}, tags=["exports"])
async def export_file(request: AuthedRequest, export_id: uuid.UUID):
    """The zip of a finished export: to the caller who asked for it only, until it expires."""
    export = await export_get(user=request.auth, export_id=export_id)
    if export.state != protocol.ExportState.DONE:
        raise protocol.ChatError(protocol.ErrorCode.CONFLICT, f"the export is {export.state}")
    name = f"{export.room.slug if export.room else 'my-messages'}-export.zip"
    return await file_response(
        name=export.file.name or "", content_type="application/zip", filename=name
    )


@api.delete("/exports/{export_id}", response={204: None, **Errors}, tags=["exports"])
async def export_remove(request: AuthedRequest, export_id: uuid.UUID):
    """Delete an export of the caller's, and its file: it no longer counts
    against CHAT_EXPORT_MAX_BYTES. One being built is refused (`conflict`)."""
    await export_delete(user=request.auth, export_id=export_id)
    return Status(204, None)


@api.get("/asyncapi.json", auth=None, include_in_schema=False)
def asyncapi(request: HttpRequest) -> JsonResponse:
    """The AsyncAPI 3.0 document of the WebSocket protocol."""
    return JsonResponse(spec.asyncapi_document())

"""What is the caller's own: API tokens, and exports."""

import uuid

from ninja import Router, Status

from chat import protocol
from chat.api.common import AuthedRequest, Errors
from chat.files import file_response
from chat.selectors import tokens as token_selectors
from chat.selectors.exports import export_get, export_out
from chat.services import tokens as token_services
from chat.services.exports import export_delete, export_request
from chat.services.tokens import token_revoke

router = Router()


@router.get("/tokens", response={200: list[protocol.TokenOut], **Errors}, tags=["tokens"])
async def tokens_list(request: AuthedRequest):
    return await token_selectors.tokens_list(user=request.auth)


@router.post("/tokens", response={201: protocol.TokenCreated, **Errors}, tags=["tokens"])
async def token_create(request: AuthedRequest, payload: protocol.TokenCreate):
    """Create a token. Its secret is in this reply only."""
    return Status(201, await token_services.token_create(user=request.auth, name=payload.name))


@router.delete("/tokens/{token_id}", response={204: None, **Errors}, tags=["tokens"])
async def token_delete(request: AuthedRequest, token_id: int):
    """Revoke a token: it no longer authenticates, and its open sockets close."""
    await token_revoke(user=request.auth, token_id=token_id)
    return Status(204, None)


@router.post(
    "/rooms/{slug}/exports", response={202: protocol.ExportEvent, **Errors}, tags=["exports"]
)
async def room_export_create(request: AuthedRequest, slug: protocol.Slug):
    """Export the room (its owner, or by the permission to export any room,
    audited): built in the background, with `export` frames to the caller's
    sockets; one being built is returned, and past the limits `rate_limited`
    or `too_large`."""
    return Status(202, await export_request(user=request.auth, slug=slug))


@router.post("/exports", response={202: protocol.ExportEvent, **Errors}, tags=["exports"])
async def export_create(request: AuthedRequest):
    """Start an export of everything the caller wrote, in every room, with their account."""
    return Status(202, await export_request(user=request.auth, slug=None))


@router.get(
    "/exports/{export_id}", response={200: protocol.ExportEvent, **Errors}, tags=["exports"]
)
async def export_status(request: AuthedRequest, export_id: uuid.UUID):
    """An export of the caller's: how far it got, and once done its file's `url`."""
    export = await export_get(user=request.auth, export_id=export_id)
    return export_out(export, slug=export.room.slug if export.room else None)


@router.get("/exports/{export_id}/file", response={200: None, **Errors}, tags=["exports"])
async def export_file(request: AuthedRequest, export_id: uuid.UUID):
    """The zip of a finished export: to the caller who asked for it only, until it expires."""
    export = await export_get(user=request.auth, export_id=export_id)
    if export.state != protocol.ExportState.DONE:
        raise protocol.ChatError(protocol.ErrorCode.CONFLICT, f"the export is {export.state}")
    name = f"{export.room.slug if export.room else 'my-messages'}-export.zip"
    return await file_response(
        name=export.file.name or "", content_type="application/zip", filename=name
    )


@router.delete("/exports/{export_id}", response={204: None, **Errors}, tags=["exports"])
async def export_remove(request: AuthedRequest, export_id: uuid.UUID):
    """Delete an export of the caller's, and its file: it no longer counts
    against CHAT_EXPORT_MAX_BYTES. One being built is refused (`conflict`)."""
    await export_delete(user=request.auth, export_id=export_id)
    return Status(204, None)

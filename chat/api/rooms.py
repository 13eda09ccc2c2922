"""Rooms: listing, making and changing them, their members, and moderation."""

from ninja import Router, Status

from chat import protocol
from chat.api.common import AuthedRequest, Errors, actor
from chat.selectors.moderation import moderation_log
from chat.selectors.rooms import room_get_visible, room_members, rooms_visible
from chat.services import rooms as room_services
from chat.services.moderation import room_moderate
from chat.services.rooms import membership_invite, membership_remove

router = Router()


@router.get("/rooms", response={200: list[protocol.RoomOut], **Errors}, tags=["rooms"])
async def rooms_list(request: AuthedRequest):
    """Public rooms and the private rooms the caller is a member of."""
    return await rooms_visible(user=request.auth)


@router.post("/rooms", response={201: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_create(request: AuthedRequest, payload: protocol.RoomCreate):
    """Create a room, with the caller as its owner. `conflict` if the slug is taken."""
    await room_services.room_create(creator=request.auth, **payload.model_dump())
    return Status(201, await room_get_visible(slug=payload.slug, actor=actor(request)))


@router.get("/rooms/{slug}", response={200: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_get(request: AuthedRequest, slug: protocol.Slug):
    return await room_get_visible(slug=slug, actor=actor(request))


@router.patch("/rooms/{slug}", response={200: protocol.RoomOut, **Errors}, tags=["rooms"])
async def room_update(request: AuthedRequest, slug: protocol.Slug, payload: protocol.RoomUpdate):
    """Change the title, the privacy, or whether guests may write: the room's
    owner or a moderator."""
    await room_services.room_update(
        slug=slug, user=request.auth, **payload.model_dump(exclude_unset=True)
    )
    return await room_get_visible(slug=slug, actor=actor(request))


@router.get(
    "/rooms/{slug}/members", response={200: list[protocol.MemberOut], **Errors}, tags=["rooms"]
)
async def members_list(request: AuthedRequest, slug: protocol.Slug):
    return await room_members(slug=slug, actor=actor(request))


@router.put("/rooms/{slug}/members/{username}", response={204: None, **Errors}, tags=["rooms"])
async def member_add(request: AuthedRequest, slug: protocol.Slug, username: str):
    """Make a user a member: the room's owner or a moderator. Idempotent."""
    await membership_invite(slug=slug, inviter=request.auth, username=username)
    return Status(204, None)


@router.delete("/rooms/{slug}/members/{username}", response={204: None, **Errors}, tags=["rooms"])
async def member_delete(request: AuthedRequest, slug: protocol.Slug, username: str):
    """Leave a room, or (owner or moderator) remove someone else."""
    await membership_remove(slug=slug, user=request.auth, username=username)
    return Status(204, None)


@router.post(
    "/rooms/{slug}/moderation", response={200: protocol.ModeratedEvent, **Errors}, tags=["rooms"]
)
async def moderation_create(
    request: AuthedRequest, slug: protocol.Slug, payload: protocol.Moderation
):
    """Kick, ban, unban, mute, unmute, promote or demote a user: the room's owner
    or a moderator (promote and demote: the owner). Logged; the room is told."""
    return await room_moderate(
        slug=slug,
        actor=actor(request),
        moderation=payload,
        address=request.META.get("REMOTE_ADDR"),
    )


@router.get(
    "/rooms/{slug}/moderation",
    response={200: list[protocol.ModerationLogOut], **Errors},
    tags=["rooms"],
)
async def moderation_list(request: AuthedRequest, slug: protocol.Slug):
    """The room's audit log, newest first (100 entries): its owner and moderators."""
    return await moderation_log(slug=slug, actor=actor(request))

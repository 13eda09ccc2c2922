"""Direct messages: the private room of a fixed set of 2 to 8 people, made on
its first message. The same people always find the same DM. Users may block
others from writing to DMs they are in."""

import hashlib
import secrets
from uuid import UUID

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from chat import protocol
from chat.actor import Actor
from chat.models import Block, Membership, Room
from chat.protocol import RoomKind
from chat.selectors.dms import blocks_list
from chat.services.broadcast import user_frame_broadcast
from chat.services.limits import send_rate_take
from chat.services.messages import message_send


def _dm_members(*, actor: Actor, usernames: list[str]) -> dict[int, str]:
    """The DM's members, id -> username: the sender and these active users
    (forbidden if one of them has blocked the sender)."""
    found = dict(
        get_user_model()
        .objects.filter(username__in=set(usernames), is_active=True)
        .values_list("pk", "username")
    )
    if missing := set(usernames) - set(found.values()):
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no user {min(missing)!r}")
    assert actor.user_id is not None  # dm_send refuses guests
    members = found | {actor.user_id: actor.name}
    if len(members) < 2:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "write to someone else")
    blocking = Block.objects.filter(user_id__in=found, blocked_id=actor.user_id)
    if name := blocking.values_list("user__username", flat=True).first():
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, f"{name} has blocked you")
    return members


def _dm_key(members: dict[int, str]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(members))).encode()).hexdigest()


@database_sync_to_async
def _dm_room_get(*, actor: Actor, usernames: list[str]) -> tuple[Room | None, dict[int, str]]:
    """The DM of the actor and these users if it exists yet, and its members."""
    members = _dm_members(actor=actor, usernames=usernames)
    return Room.objects.filter(dm_key=_dm_key(members)).first(), members


@database_sync_to_async
def _dm_room_create(*, members: dict[int, str]) -> tuple[Room, bool]:
    """The DM of these members, made if missing; returns (room, created)."""
    key = _dm_key(members)
    try:
        with transaction.atomic():
            room = Room.objects.create(
                # Random, so no room a user made can hold a DM's slug.
                slug=f"dm-{secrets.token_hex(8)}",
                title=", ".join(sorted(members.values())),
                private=True,
                kind=Room.Kind.DM,
                dm_key=key,
            )
            Membership.objects.bulk_create(Membership(room=room, user_id=pk) for pk in members)
    except IntegrityError:
        return Room.objects.get(dm_key=key), False  # made a moment ago by another send
    return room, True


async def dm_send(
    *, actor: Actor, usernames: list[str], body: str, client_id: UUID, address: str | None = None
) -> protocol.AckEvent:
    """Send a direct message to these users: into their DM with the sender,
    made (and announced to each member's sockets with `added`) on the first
    message. Making one counts as a send against the rates."""
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "sign in to send direct messages")
    room, members = await _dm_room_get(actor=actor, usernames=usernames)
    if room is None:
        await send_rate_take(actor=actor, address=address)
        room, created = await _dm_room_create(members=members)
        if created:
            added = protocol.AddedEvent(
                room=room.slug, title=room.title, kind=RoomKind.DM, members=sorted(members.values())
            )
            await user_frame_broadcast(user_ids=set(members), frame=added)
    return await message_send(
        actor=actor, slug=room.slug, body=body, client_id=client_id, address=address
    )


@database_sync_to_async
def _block_set(*, user_id: int, username: str, on: bool) -> None:
    blocked = get_user_model().objects.filter(username=username).values_list("pk", flat=True)
    blocked_id = blocked.first()
    if blocked_id is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no user {username!r}")
    if blocked_id == user_id:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "you cannot block yourself")
    mine = Block.objects.filter(user_id=user_id)
    if not on:
        mine.filter(blocked_id=blocked_id).delete()
    elif not mine.filter(blocked_id=blocked_id).exists():
        if mine.count() >= protocol.MAX_BLOCKS:
            raise protocol.ChatError(
                protocol.ErrorCode.BAD_REQUEST,
                f"you may block at most {protocol.MAX_BLOCKS} people",
            )
        Block.objects.get_or_create(user_id=user_id, blocked_id=blocked_id)


async def block_set(
    *, actor: Actor, username: str, on: bool, address: str | None = None
) -> protocol.BlocksEvent:
    """Block (or unblock) a user for the actor; returns whom the actor blocks.
    Idempotent; counts as a send against the rates."""
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "sign in to block people")
    await send_rate_take(actor=actor, address=address)
    await _block_set(user_id=actor.user_id, username=username, on=on)
    return await blocks_list(user_id=actor.user_id)

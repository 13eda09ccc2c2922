"""Reads, with the async ORM. Access rules for reading a room live here."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from chat import protocol
from chat.models import ApiToken, Membership, Message, Room

if TYPE_CHECKING:
    from chat.auth import Actor


def message_frame(message: Message, *, room: str) -> protocol.MessageOut:
    """A stored message as the protocol shows it."""
    return protocol.MessageOut(
        kind=message.kind,
        target=message.target,
        room=room,
        seq=message.seq,
        id=message.pk,
        author=protocol.Author(name=message.author_name, guest=message.author_id is None),
        body="" if message.deleted else message.body,
        client_id=message.client_id,
        created=message.created,
        edited=message.edited,
        deleted=message.deleted,
    )


async def room_get_readable(*, slug: str, actor: "Actor") -> Room:
    """The room, if the actor may read and write it; else not_found or forbidden."""
    room = await Room.objects.filter(slug=slug).afirst()
    if room is None:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no room '{slug}'")
    if room.private and not (
        actor.user is not None
        and await Membership.objects.filter(room=room, user_id=actor.user_id).aexists()
    ):
        raise protocol.ChatError(
            protocol.ErrorCode.FORBIDDEN, f"room '{slug}' is private to its members"
        )
    return room


async def messages_page(
    *, room: Room, before: int | None = None, after: int | None = None, upto: int, limit: int
) -> list[Message]:
    """Up to `limit` messages with seq <= upto, in seq order: the oldest after `after`,
    else the newest before `before` (or the newest of all)."""
    messages = Message.objects.filter(room=room, seq__lte=upto)
    if after is not None:
        return [m async for m in messages.filter(seq__gt=after).order_by("seq")[:limit]]
    if before is not None:
        messages = messages.filter(seq__lt=before)
    newest = [m async for m in messages.order_by("-seq")[:limit]]
    newest.reverse()
    return newest


async def history_page(
    *, actor: "Actor", slug: str, before: int | None, after: int | None, limit: int | None
) -> protocol.HistoryEvent:
    """A `history` reply, if the actor may read the room. `complete` says the page
    reaches seq 1 (going back) or the room's last_seq (going forward)."""
    room = await room_get_readable(slug=slug, actor=actor)
    limit = limit or settings.CHAT_HISTORY_PAGE
    upto = room.last_seq
    messages = await messages_page(room=room, before=before, after=after, upto=upto, limit=limit)
    if after is not None:
        complete = (messages[-1].seq if messages else after) >= upto
    else:
        complete = not messages or messages[0].seq == 1
    return protocol.HistoryEvent(
        room=room.slug,
        before=before,
        after=after,
        messages=[message_frame(m, room=room.slug) for m in messages],
        complete=complete,
    )


async def rooms_last_seq(*, slugs: list[str]) -> dict[str, int]:
    """The last_seq of each of these rooms, in one query."""
    rows = Room.objects.filter(slug__in=slugs).values_list("slug", "last_seq")
    return {slug: last_seq async for slug, last_seq in rows}


async def rooms_visible(*, user: AbstractBaseUser | None) -> list[dict]:
    """Public rooms and the private rooms the user is a member of, by slug, each
    with the user's `role` (None if not a member) and `unread`: others'
    messages after the user's read marker."""
    if user is None or not user.is_authenticated:
        rooms = Room.objects.filter(private=False).order_by("slug")
        return [_room_row(room, role=None, unread=0) async for room in rooms]
    membership = Membership.objects.filter(room=OuterRef("pk"), user=user)
    unread = (
        Message.objects.filter(
            room=OuterRef("pk"),
            kind=Message.Kind.MESSAGE,
            deleted=False,
            seq__gt=Coalesce(OuterRef("read"), 0),
        )
        .exclude(author=user)
        .values("room")
        .annotate(count=Count("pk"))
        .values("count")
    )
    member_of = Membership.objects.filter(user=user).values("room")
    rooms = (
        Room.objects.filter(Q(private=False) | Q(pk__in=member_of))
        .annotate(read=Subquery(membership.values("last_read_seq")))
        .annotate(role=Subquery(membership.values("role")))
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .order_by("slug")
    )
    return [
        _room_row(room, role=room.role, unread=room.unread if room.role else 0)
        async for room in rooms
    ]


def _room_row(room: Room, *, role: str | None, unread: int) -> dict:
    return {
        "slug": room.slug,
        "title": room.title,
        "private": room.private,
        "last_seq": room.last_seq,
        "member": role is not None,
        "role": role,
        "unread": unread,
    }


async def token_user(*, key_hash: str) -> AbstractBaseUser | None:
    """The active user whose API token has this hash, or None."""
    token = (
        await ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash, user__is_active=True)
        .afirst()
    )
    return None if token is None else token.user

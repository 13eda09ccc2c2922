"""Reads, with the async ORM. They fetch the facts access rules decide on (chat/access.py)."""

import hashlib
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQuery as PgSearchQuery
from django.contrib.postgres.search import SearchVector
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from chat import protocol
from chat.access import room_manager_refusal, room_refusal
from chat.actor import Actor
from chat.models import (
    ApiToken,
    Attachment,
    Block,
    LinkPreview,
    Membership,
    Mention,
    Message,
    ModerationLog,
    Reaction,
    Room,
    Sanction,
)


def _author(message: Message) -> protocol.Author:
    return protocol.Author(name=message.author_name, guest=message.author_id is None)


def message_frame(
    message: Message,
    *,
    room: str,
    quote: protocol.Quote | None = None,
    reactions: list[protocol.ReactionOut] | None = None,
    mentions: list[str] | None = None,
    preview: protocol.PreviewOut | None = None,
    attachment: protocol.AttachmentOut | None = None,
) -> protocol.MessageOut:
    """A stored stream entry as the protocol shows it."""
    return protocol.MessageOut(
        kind=message.kind,
        target=message.target,
        room=room,
        seq=message.seq,
        id=message.pk,
        author=_author(message),
        body="" if message.deleted else message.body,
        client_id=message.client_id,
        created=message.created,
        edited=message.edited,
        deleted=message.deleted,
        reply_to=message.reply_to,
        quote=quote,
        reactions=reactions or [],
        mentions=mentions or [],
        preview=preview,
        attachment=attachment,
    )


# The entries whose frames carry their message's mentions.
MENTIONING = (Message.Kind.MESSAGE, Message.Kind.EDIT)


def _subject(entry: Message) -> int:
    """The seq of the message an entry is about: its own, or its target's."""
    return entry.seq if entry.kind == Message.Kind.MESSAGE else entry.target


async def message_frames(messages: list[Message], *, room: str) -> list[protocol.MessageOut]:
    """Stream entries of one room as the protocol shows them, with the quotes
    of replies, the current reactions of messages (and of reaction entries'
    targets), mentions, previews and attachments: at most one query for each,
    and none for what no entry can have (no reaction yet, no `@`, no link)."""
    if not messages:
        return []
    room_id = messages[0].room_id
    replied = {m.reply_to for m in messages if m.reply_to is not None}
    quotes = {}
    if replied:
        originals = Message.objects.filter(
            room_id=room_id, seq__in=replied, kind=Message.Kind.MESSAGE
        )
        quotes = {
            m.seq: protocol.Quote(
                seq=m.seq,
                author=_author(m),
                body="" if m.deleted else m.body[: protocol.QUOTE_CHARS],
                deleted=m.deleted,
            )
            async for m in originals
        }
    reacted = {
        _subject(m)
        for m in messages
        if (m.kind == Message.Kind.MESSAGE and m.reacted and not m.deleted)
        or m.kind in (Message.Kind.REACT, Message.Kind.UNREACT)
    }
    reactions = await reactions_of(room_id=room_id, seqs=reacted) if reacted else {}
    naming = {_subject(m) for m in messages if m.kind in MENTIONING and "@" in m.body}
    mentions: dict[int, list[str]] = {}
    if naming:
        rows = Mention.objects.filter(room_id=room_id, seq__in=naming).order_by("pk")
        async for seq, username in rows.values_list("seq", "user__username"):
            mentions.setdefault(seq, []).append(username)
    urls = {m.pk: _preview_url(m) for m in messages}
    previews = await previews_of(urls=set(urls.values()) - {None})
    attached = {m.attachment_id for m in messages if m.attachment_id and not m.deleted}
    attachments = (
        {a.pk: attachment_out(a) async for a in Attachment.objects.filter(pk__in=attached)}
        if attached
        else {}
    )
    return [
        message_frame(
            m,
            room=room,
            quote=quotes.get(m.reply_to),
            reactions=reactions.get(_subject(m)),
            mentions=mentions.get(_subject(m)) if m.kind in MENTIONING else None,
            preview=previews.get(urls[m.pk]),
            attachment=attachments.get(m.attachment_id),
        )
        for m in messages
    ]


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


async def room_get_writable(*, slug: str, actor: Actor) -> Room:
    """The room, if the actor may write in it: read it, and not be muted (or,
    for a guest, guests may write to it)."""
    room = await room_get_readable(slug=slug, actor=actor)
    if refusal := room_refusal(room=room, slug=slug, member=True, guest_writing=actor.guest):
        raise refusal
    if actor.user is not None:
        mute = await Sanction.objects.filter(
            sanctions_active(), room=room, user_id=actor.user_id, kind=Sanction.Kind.MUTE
        ).afirst()
        if refusal := room_refusal(room=room, slug=slug, member=True, sanction=mute):
            raise refusal
    return room


def _preview_url(message: Message) -> str | None:
    """The URL whose preview an entry shows: a message's first, a preview entry's own."""
    if message.kind == Message.Kind.PREVIEW:
        return message.body
    if message.kind == Message.Kind.MESSAGE and not message.deleted and "http" in message.body:
        return protocol.first_url(message.body)
    return None


def url_hash(url: str) -> str:
    """The key of a URL's cached preview (LinkPreview.url_hash)."""
    return hashlib.sha256(url.encode()).hexdigest()


async def previews_of(*, urls: set[str]) -> dict[str, protocol.PreviewOut]:
    """The fetched previews of these URLs (those that gave one), in one query."""
    if not urls:
        return {}
    hashes = {url_hash(url) for url in urls}
    rows = LinkPreview.objects.filter(url_hash__in=hashes, ok=True)
    return {
        p.url: protocol.PreviewOut(
            url=p.url, title=p.title, description=p.description, image=p.image
        )
        async for p in rows
    }


async def mentions_page(
    *, actor: Actor, before: int | None, limit: int | None
) -> protocol.MentionsEvent:
    """The messages that @-named the user, newest first, older than message id
    `before`: in rooms the user may still read, not deleted."""
    limit = limit or settings.CHAT_HISTORY_PAGE
    if actor.user is None:
        return protocol.MentionsEvent(before=before, messages=[], complete=True)
    named = Mention.objects.filter(
        user_id=actor.user_id, room=OuterRef("room"), seq=OuterRef("seq")
    )
    messages = Message.objects.filter(
        Exists(named), rooms_readable(actor=actor), kind=Message.Kind.MESSAGE, deleted=False
    )
    frames, complete = await _newest_page(messages, before=before, limit=limit)
    return protocol.MentionsEvent(before=before, messages=frames, complete=complete)


def rooms_readable(*, actor: Actor) -> Q:
    """Messages in rooms the actor may read: public ones (unless banned), and
    private ones they are a member of."""
    if actor.user is None:
        return Q(room__private=False)
    banned = Sanction.objects.filter(
        sanctions_active(), user_id=actor.user_id, kind=Sanction.Kind.BAN
    ).values("room")
    member_of = Membership.objects.filter(user_id=actor.user_id).values("room")
    return (Q(room__private=False) | Q(room__in=member_of)) & ~Q(room__in=banned)


async def _newest_page(
    messages: QuerySet, *, before: int | None, limit: int
) -> tuple[list[protocol.MessageOut], bool]:
    """Up to `limit` of these messages (of any rooms) older than id `before`,
    newest first, as frames; and whether that reaches the oldest."""
    messages = messages.select_related("room").order_by("-pk")
    if before is not None:
        messages = messages.filter(pk__lt=before)
    page = [m async for m in messages[: limit + 1]]
    shown = page[:limit]
    frames: dict[int, protocol.MessageOut] = {}
    for slug in {m.room.slug for m in shown}:
        of_room = [m for m in shown if m.room.slug == slug]
        for m, frame in zip(of_room, await message_frames(of_room, room=slug), strict=True):
            frames[m.pk] = frame
    fitted = protocol.fit_page([frames[m.pk] for m in shown], oldest=True)
    return fitted, len(page) <= limit and len(fitted) == len(shown)


async def messages_search(
    *,
    actor: Actor,
    q: str,
    room: str | None = None,
    before: int | None = None,
    limit: int | None = None,
    full_text: bool | None = None,
) -> protocol.SearchEvent:
    """Messages matching `q` in the rooms the actor may read (or in `room`, if
    readable), newest first. PostgreSQL matches words with its full-text
    search (English stemming, websearch syntax: "quoted phrases", -not, or);
    other databases (or full_text=False) match each word with icontains."""
    if room is not None:
        await room_get_readable(slug=room, actor=actor)
    messages = Message.objects.filter(
        rooms_readable(actor=actor), kind=Message.Kind.MESSAGE, deleted=False
    )
    if room is not None:
        messages = messages.filter(room__slug=room)
    if full_text is None:
        full_text = connection.vendor == "postgresql"
    if full_text:
        messages = messages.annotate(
            search=SearchVector("body", config="english")  # the index's expression
        ).filter(search=PgSearchQuery(q, config="english", search_type="websearch"))
    else:
        for word in q.split():
            messages = messages.filter(body__icontains=word)
    limit = limit or settings.CHAT_HISTORY_PAGE
    frames, complete = await _newest_page(messages, before=before, limit=limit)
    return protocol.SearchEvent(q=q, room=room, before=before, messages=frames, complete=complete)


async def reactions_of(*, room_id: int, seqs: set[int]) -> dict[int, list[protocol.ReactionOut]]:
    """The reactions on these messages, by seq: each emoji in the order it was
    first used, with its count and the names of its first REACTION_NAMES_SHOWN."""
    partition = [F("seq"), F("emoji")]
    rows = (
        Reaction.objects.filter(room_id=room_id, seq__in=seqs)
        .annotate(
            rank=Window(RowNumber(), partition_by=partition, order_by=[F("created"), F("pk")]),
            total=Window(Count("pk"), partition_by=partition),
        )
        .filter(rank__lte=protocol.REACTION_NAMES_SHOWN)
        .order_by("seq", "created", "pk")
        .values_list("seq", "emoji", "user__username", "total")
    )
    found: dict[int, dict[str, tuple[int, list[str]]]] = {}
    async for seq, emoji, username, total in rows:
        found.setdefault(seq, {}).setdefault(emoji, (total, []))[1].append(username)
    return {
        seq: [
            protocol.ReactionOut(emoji=emoji, count=total, users=users)
            for emoji, (total, users) in by_emoji.items()
        ]
        for seq, by_emoji in found.items()
    }


def sanctions_active() -> Q:
    """Bans and mutes in force now: lifted ones are deleted, expired ones stay."""
    return Q(until__isnull=True) | Q(until__gt=timezone.now())


async def room_get_readable(*, slug: str, actor: Actor) -> Room:
    """The room, if the actor may read and write it (a mute is checked on
    writing); else not_found or forbidden. One query: this runs on most frames."""
    rooms = Room.objects.filter(slug=slug)
    if actor.user is not None:
        bans = Sanction.objects.filter(
            sanctions_active(), room=OuterRef("pk"), user_id=actor.user_id, kind=Sanction.Kind.BAN
        )
        rooms = rooms.annotate(
            member=Exists(Membership.objects.filter(room=OuterRef("pk"), user_id=actor.user_id)),
            banned=Exists(bans),
            ban_until=Subquery(bans.values("until")[:1]),
            ban_reason=Subquery(bans.values("reason")[:1]),
        )
    room = await rooms.afirst()
    member = getattr(room, "member", False)
    ban = None
    if getattr(room, "banned", False):
        ban = Sanction(kind=Sanction.Kind.BAN, until=room.ban_until, reason=room.ban_reason)
    if refusal := room_refusal(room=room, slug=slug, member=member, sanction=ban):
        raise refusal
    return room


async def rooms_barred(*, pairs: set[tuple[int | None, str]]) -> dict[tuple[int | None, str], str]:
    """Of these (user id, room slug) pairs, those whose user may no longer read
    the room, with why: "ban", "removed" from a private room's members, or
    (a guest: user id None) "private"."""
    if not pairs:
        return {}
    slugs = {slug for _, slug in pairs}
    users = {user for user, _ in pairs if user is not None}
    barred: dict[tuple[int | None, str], str] = {}
    if users:
        banned = Sanction.objects.filter(
            sanctions_active(), kind=Sanction.Kind.BAN, user_id__in=users, room__slug__in=slugs
        ).values_list("user_id", "room__slug")
        barred = {pair: "ban" async for pair in banned if pair in pairs}
    private = {
        slug
        async for slug in Room.objects.filter(slug__in=slugs, private=True).values_list(
            "slug", flat=True
        )
    }
    if private:
        members = Membership.objects.filter(user_id__in=users, room__slug__in=private).values_list(
            "user_id", "room__slug"
        )
        kept = {pair async for pair in members} if users else set()
        for pair in pairs:
            if pair[1] in private and pair not in kept:
                barred.setdefault(pair, "private" if pair[0] is None else "removed")
    return barred


async def moderation_log(
    *, slug: str, actor: Actor, limit: int = 100
) -> list[protocol.ModerationLogOut]:
    """The newest entries of a room's audit log, for its owner and moderators."""
    await room_managed_by(slug=slug, user_id=actor.user_id)
    entries = ModerationLog.objects.filter(room_slug=slug).order_by("-created", "-pk")[:limit]
    return [
        protocol.ModerationLogOut(
            action=e.action,
            actor=e.actor_name,
            target=e.target_name,
            seq=e.seq,
            until=e.until,
            reason=e.reason,
            created=e.created,
        )
        async for e in entries
    ]


async def room_managed_by(*, slug: str, user_id: int | None) -> Room:
    """The room, if the user is its owner or a moderator; else not_found or forbidden."""
    room = await Room.objects.filter(slug=slug).afirst()
    role = None
    if room is not None and user_id is not None:
        role = (
            await Membership.objects.filter(room=room, user_id=user_id)
            .values_list("role", flat=True)
            .afirst()
        )
    if refusal := room_manager_refusal(room=room, slug=slug, role=role):
        raise refusal
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
    *, actor: Actor, slug: str, before: int | None, after: int | None, limit: int | None
) -> protocol.HistoryEvent:
    """A `history` reply, if the actor may read the room. `complete` says the page
    reaches seq 1 (going back) or the room's last_seq (going forward)."""
    room = await room_get_readable(slug=slug, actor=actor)
    limit = limit or settings.CHAT_HISTORY_PAGE
    upto = room.last_seq
    messages = await messages_page(room=room, before=before, after=after, upto=upto, limit=limit)
    frames = protocol.fit_page(
        await message_frames(messages, room=room.slug), oldest=after is not None
    )
    if after is not None:
        complete = (frames[-1].seq if frames else after) >= upto
    else:
        complete = not frames or frames[0].seq == 1
    return protocol.HistoryEvent(
        room=room.slug, before=before, after=after, messages=frames, complete=complete
    )


async def rooms_last_seq(*, slugs: list[str]) -> dict[str, int]:
    """The last_seq of each of these rooms, in one query."""
    rows = Room.objects.filter(slug__in=slugs).values_list("slug", "last_seq")
    return {slug: last_seq async for slug, last_seq in rows}


async def rooms_visible(
    *, user: AbstractBaseUser | None, slug: str | None = None
) -> list[protocol.RoomOut]:
    """Public rooms and the private rooms the user is a member of (or only room
    `slug`, if visible), by slug, each with the user's `role` (None if not a
    member), read marker and `unread`: others' messages after that marker."""
    rooms = Room.objects.order_by("slug")
    if slug is not None:
        rooms = rooms.filter(slug=slug)
    if user is None or not user.is_authenticated:
        return [_room_out(room, role=None) async for room in rooms.filter(private=False)]
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
    mentions = (
        Mention.objects.filter(
            room=OuterRef("pk"), user=user, seq__gt=Coalesce(OuterRef("read"), 0)
        )
        .values("room")
        .annotate(count=Count("pk"))
        .values("count")
    )
    member_of = Membership.objects.filter(user=user).values("room")
    rooms = (
        rooms.filter(Q(private=False) | Q(pk__in=member_of))
        .annotate(read=Subquery(membership.values("last_read_seq")))
        .annotate(role=Subquery(membership.values("role")))
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .annotate(mentions=Coalesce(Subquery(mentions), 0))
    )
    return [
        _room_out(
            room,
            role=room.role,
            read=room.read or 0,
            unread=room.unread if room.role else 0,
            mentions=room.mentions if room.role else 0,
        )
        async for room in rooms
    ]


def _room_out(
    room: Room, *, role: str | None, read: int = 0, unread: int = 0, mentions: int = 0
) -> protocol.RoomOut:
    return protocol.RoomOut(
        slug=room.slug,
        title=room.title,
        private=room.private,
        kind=room.kind,
        guests_can_write=room.guests_can_write,
        last_seq=room.last_seq,
        role=role,
        last_read_seq=read,
        unread=unread,
        mentions=mentions,
    )


async def room_get_visible(*, slug: str, actor: Actor) -> protocol.RoomOut:
    """One room as `rooms_visible` shows it; not_found or forbidden as for reading."""
    await room_get_readable(slug=slug, actor=actor)
    return (await rooms_visible(user=actor.user, slug=slug))[0]


async def room_members(*, slug: str, actor: Actor) -> list[protocol.MemberOut]:
    """The members of a room the actor may read, by username."""
    room = await room_get_readable(slug=slug, actor=actor)
    members = room.memberships.select_related("user").order_by("user__username")
    return [
        protocol.MemberOut(username=m.user.get_username(), role=m.role, joined=m.joined)
        async for m in members
    ]


async def blocks_list(*, user_id: int | None) -> protocol.BlocksEvent:
    """Who the user has blocked, by username (nobody, for a guest)."""
    blocked = Block.objects.filter(user_id=user_id).order_by("blocked__username")
    names = blocked.values_list("blocked__username", flat=True)
    return protocol.BlocksEvent(users=[name async for name in names] if user_id else [])


async def username_taken(*, name: str) -> bool:
    """Whether a user has this username, in any case (active or not)."""
    return await get_user_model().objects.filter(username__iexact=name).aexists()


async def token_get(*, key_hash: str) -> ApiToken | None:
    """The API token with this hash, with its user, if that user is active."""
    return (
        await ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash, user__is_active=True)
        .afirst()
    )


async def tokens_list(*, user: AbstractBaseUser) -> list[protocol.TokenOut]:
    """The user's API tokens, newest first (their secrets are not kept)."""
    tokens = ApiToken.objects.filter(user=user).order_by("-created", "-pk")
    return [
        protocol.TokenOut(id=t.pk, name=t.name, prefix=t.prefix, created=t.created)
        async for t in tokens
    ]


async def credentials_valid(
    *, users: set[int], tokens: set[int], sessions: set[str]
) -> tuple[set[int], set[int], set[str]]:
    """Which of these users are active, tokens exist and sessions are unexpired:
    what open sockets were authenticated with. One query for each kind asked."""
    active, alive, live = set(), set(), set()
    if users:
        rows = get_user_model().objects.filter(pk__in=users, is_active=True)
        active = {pk async for pk in rows.values_list("pk", flat=True)}
    if tokens:
        alive = {
            pk async for pk in ApiToken.objects.filter(pk__in=tokens).values_list("pk", flat=True)
        }
    if sessions:
        rows = Session.objects.filter(session_key__in=sessions, expire_date__gt=timezone.now())
        live = {key async for key in rows.values_list("session_key", flat=True)}
    return active, alive, live

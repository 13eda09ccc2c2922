"""Reading rooms' streams: entries as frames, history pages, mentions and search."""

from django.conf import settings
from django.contrib.postgres.search import SearchQuery as PgSearchQuery
from django.contrib.postgres.search import SearchVector
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Window
from django.db.models.functions import RowNumber

from chat import protocol
from chat.actor import Actor
from chat.models import Attachment, Mention, Message, Reaction
from chat.protocol import EntryKind
from chat.selectors.attachments import attachment_out
from chat.selectors.previews import previews_of
from chat.selectors.rooms import room_get_readable, rooms_readable


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
        kind=EntryKind(message.kind),
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
    if entry.kind == Message.Kind.MESSAGE or entry.target is None:
        return entry.seq
    return entry.target


def _preview_url(message: Message) -> str | None:
    """The URL whose preview an entry shows: a message's first, a preview entry's own."""
    if message.kind == Message.Kind.PREVIEW:
        return message.body or None  # erased with its deleted message
    if message.kind == Message.Kind.MESSAGE and not message.deleted and "http" in message.body:
        return protocol.first_url(message.body)
    return None


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
    previews = await previews_of(urls={url for url in urls.values() if url is not None})
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
            quote=quotes.get(m.reply_to) if m.reply_to is not None else None,
            reactions=reactions.get(_subject(m)),
            mentions=mentions.get(_subject(m)) if m.kind in MENTIONING else None,
            preview=previews.get(urls[m.pk] or ""),
            attachment=attachments.get(m.attachment_id or 0),
        )
        for m in messages
    ]


async def messages_page(
    *, room_id: int, before: int | None = None, after: int | None = None, upto: int, limit: int
) -> list[Message]:
    """Up to `limit` messages of the room with seq <= upto, in seq order: the
    oldest after `after`, else the newest before `before` (or the newest of all)."""
    messages = Message.objects.filter(room_id=room_id, seq__lte=upto)
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
    messages = await messages_page(
        room_id=room.pk, before=before, after=after, upto=upto, limit=limit
    )
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


async def mentions_page(
    *, actor: Actor, before: int | None, limit: int | None
) -> protocol.MentionsEvent:
    """The messages that @-named the user, newest first, older than message id
    `before`: in rooms the user may still read, not deleted."""
    limit = limit or settings.CHAT_HISTORY_PAGE
    if actor.user is None:
        return protocol.MentionsEvent(before=before, messages=[], complete=True)
    named = Mention.objects.filter(user=actor.user, room=OuterRef("room"), seq=OuterRef("seq"))
    messages = Message.objects.filter(
        Exists(named), rooms_readable(actor=actor), kind=Message.Kind.MESSAGE, deleted=False
    )
    frames, complete = await _newest_page(messages, before=before, limit=limit)
    return protocol.MentionsEvent(before=before, messages=frames, complete=complete)


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

"""The GraphQL schema: queries, mutations and subscriptions over the same
services, selectors and access rules as the socket and REST.

Each resolver validates its arguments with the protocol's own models, calls
one service or selector, and returns its result as the matching type of
chat/graphql/types.py. A refusal is the service's `ChatError`, answered as a
GraphQL error whose `extensions.code` is the protocol's code (`not_found`,
`forbidden`, `rate_limited` with `retryAfter`, ...). Nested fields cost no
query of their own: a page's quotes, reactions, previews and attachments are
read with the page (`message_frames`, one query each per page), so a page of
50 messages costs what a page of 10 does.

Subscriptions are served by the socket at /graphql/ (chat/realtime/graphql.py),
which streams each event through the selection asked for; over HTTP they
are refused.
"""

import inspect
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from django.contrib.auth.models import User
from graphql import GraphQLError
from pydantic import BaseModel, ValidationError
from strawberry.types import Info

from chat import protocol
from chat.actor import Actor
from chat.graphql import limits
from chat.graphql.types import (
    Ack,
    Blocks,
    Export,
    Me,
    Member,
    Message,
    Moderated,
    MyEvent,
    RoomEvent,
)
from chat.protocol import ModerationAction, RoomKind
from chat.selectors.messages import history_page, mentions_page, messages_search
from chat.selectors.rooms import room_get_visible, room_members, rooms_visible
from chat.services import rooms as room_services
from chat.services.dms import block_set, dm_send
from chat.services.exports import export_request
from chat.services.messages import message_delete, message_edit, message_send, reaction_set
from chat.services.moderation import room_moderate

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def _described(decorator: Any) -> Any:
    """The strawberry decorator, with the resolver's docstring as the field's description."""

    def wrap(resolver: Any) -> Any:
        return decorator(resolver, description=inspect.getdoc(resolver))

    return wrap


field = _described(strawberry.field)
mutation = _described(strawberry.mutation)
subscription = _described(strawberry.subscription)


@dataclass
class Context:
    """Who asks, as the services take them (None: no credentials, over HTTP),
    and from where (the rate limits key by it)."""

    actor: Actor | None
    address: str | None


def _actor(info: Info) -> Actor:
    actor = info.context.actor
    if actor is None:
        detail = "send Authorization: Bearer <token>, or sign in (with the CSRF token)"
        raise protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, detail)
    return actor


def _user(info: Info) -> User:
    actor = _actor(info)
    if actor.user is None:
        raise protocol.ChatError(protocol.ErrorCode.FORBIDDEN, "sign up or sign in to do this")
    return actor.user


def _valid(model: type[M], **fields: Any) -> M:
    """The arguments as the protocol's model, or the protocol's error for them."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise protocol.error_from_fields([dict(e) for e in exc.errors()]) from None


def _page_size(first: int | None, last: int | None) -> int | None:
    if first is not None and last is not None:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "give first or last, not both")
    size = first if first is not None else last
    if size is not None and not 1 <= size <= limits.MAX_PAGE:
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST, f"first and last are 1-{limits.MAX_PAGE}"
        )
    return size


def _seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, "a cursor is a message's seq")
    return int(cursor)


def _messages(frames: list[protocol.MessageOut]) -> list[Message]:
    return [Message.from_pydantic(frame) for frame in frames]  # type: ignore[attr-defined]


@strawberry.experimental.pydantic.type(
    model=protocol.RoomOut,
    name="Room",
    description=(
        "A room or DM the caller may read, with the caller's role (null: not a member), read "
        "marker, unread count and unread mentions."
    ),
)
class Room:
    """A room or DM the caller may read, with the caller's role (null: not a
    member), read marker, unread count and unread mentions."""

    slug: strawberry.auto
    title: strawberry.auto
    private: strawberry.auto
    kind: strawberry.auto
    guests_can_write: strawberry.auto
    last_seq: strawberry.auto
    role: strawberry.auto
    last_read_seq: strawberry.auto
    unread: strawberry.auto
    mentions: strawberry.auto

    @field
    async def members(self, info: Info) -> list[Member]:
        """The room's members (a DM's: its people), by username."""
        found = await room_members(slug=self.slug, actor=_actor(info))
        return [Member.from_pydantic(m) for m in found]  # type: ignore[attr-defined]


def _room(room: protocol.RoomOut) -> Room:
    return Room.from_pydantic(room)  # type: ignore[attr-defined]


@strawberry.type
class PageInfo:
    has_previous_page: bool
    has_next_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type(
    description="A page of a room's history, oldest first; a cursor is the entry's seq."
)
class MessageConnection:
    """A page of a room's history, oldest first; a cursor is the entry's seq."""

    edges: list[MessageEdge]
    page_info: PageInfo


@strawberry.type(
    description=(
        "Messages across rooms, newest first; `complete`: there are no older ones (page back with"
        " `before`, the last one's `id`)."
    ),
)
class MessagePage:
    messages: list[Message]
    complete: bool


@strawberry.type
class Query:
    @field
    def me(self, info: Info) -> Me:
        """Who the caller is."""
        actor = _actor(info)
        return Me(name=actor.name, guest=actor.guest)

    @field
    async def rooms(self, info: Info) -> list[Room]:
        """Public rooms and the private rooms and DMs the caller is in, by slug."""
        found = await rooms_visible(user=_actor(info).user)
        return [_room(room) for room in found]

    @field
    async def dms(self, info: Info) -> list[Room]:
        """The caller's direct messages."""
        found = await rooms_visible(user=_user(info))
        return [_room(room) for room in found if room.kind == RoomKind.DM]

    @field
    async def room(self, info: Info, slug: str) -> Room:
        """One room; `not_found` for a room the caller may not read, as for one that is not."""
        _valid(protocol.JoinFrame, type="join", room=slug)
        return _room(await room_get_visible(slug=slug, actor=_actor(info)))

    @field
    async def messages(
        self,
        info: Info,
        room: str,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        """A room's history by seq: `first` after `after` pages forward, `last`
        before `before` (the default: the newest 50) pages back; at most 100."""
        size = _page_size(first, last)
        forward = first is not None or after is not None
        cursor = _valid(
            protocol.HistoryCursor,
            after=(_seq_cursor(after) or 0) if forward else None,
            before=None if forward else _seq_cursor(before),
            limit=size,
        )
        _valid(protocol.JoinFrame, type="join", room=room)
        page = await history_page(actor=_actor(info), slug=room, **cursor.model_dump())
        edges = [MessageEdge(cursor=str(m.seq), node=m) for m in _messages(page.messages)]
        info_ = PageInfo(
            has_previous_page=bool(cursor.after) if forward else not page.complete,
            has_next_page=not page.complete if forward else cursor.before is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return MessageConnection(edges=edges, page_info=info_)

    @field
    async def mentions(
        self, info: Info, first: int | None = None, before: int | None = None
    ) -> MessagePage:
        """Messages that @-named the caller, newest first."""
        cursor = _valid(protocol.MentionsCursor, before=before, limit=_page_size(first, None))
        page = await mentions_page(actor=_actor(info), **cursor.model_dump())
        return MessagePage(messages=_messages(page.messages), complete=page.complete)

    @field
    async def search(
        self,
        info: Info,
        query: str,
        room: str | None = None,
        first: int | None = None,
        before: int | None = None,
    ) -> MessagePage:
        """Messages matching `query` in the rooms the caller may read (or in `room`)."""
        found = _valid(
            protocol.SearchQuery, q=query, room=room, before=before, limit=_page_size(first, None)
        )
        page = await messages_search(actor=_actor(info), **found.model_dump())
        return MessagePage(messages=_messages(page.messages), complete=page.complete)


def _ack(ack: protocol.AckEvent) -> Ack:
    return Ack.from_pydantic(ack)  # type: ignore[attr-defined]


@strawberry.type
class Mutation:
    @mutation
    async def send_message(
        self,
        info: Info,
        room: str,
        body: str,
        client_id: uuid.UUID,
        reply_to: int | None = None,
    ) -> Ack:
        """Post a message. Idempotent by `clientId`: a resend returns the first one's seq."""
        _valid(protocol.JoinFrame, type="join", room=room)
        post = _valid(protocol.MessagePost, body=body, client_id=client_id, reply_to=reply_to)
        ack = await message_send(
            actor=_actor(info),
            slug=room,
            body=post.body,
            client_id=post.client_id,
            reply_to=post.reply_to,
            address=info.context.address,
        )
        return _ack(ack)

    @mutation
    async def edit_message(
        self, info: Info, room: str, seq: int, body: str, client_id: uuid.UUID | None = None
    ) -> Ack:
        """Change the text of one's own message `seq`."""
        edit = _valid(
            protocol.EditFrame,
            type="edit",
            room=room,
            seq=seq,
            body=body,
            client_id=client_id or uuid.uuid4(),
        )
        ack = await message_edit(
            actor=_actor(info),
            slug=edit.room,
            seq=edit.seq,
            body=edit.body,
            client_id=edit.client_id,
            address=info.context.address,
        )
        return _ack(ack)

    @mutation
    async def delete_message(
        self, info: Info, room: str, seq: int, client_id: uuid.UUID | None = None
    ) -> Ack:
        """Delete one's own message `seq` (a moderator: anyone's); its text is erased."""
        delete = _valid(
            protocol.DeleteFrame,
            type="delete",
            room=room,
            seq=seq,
            client_id=client_id or uuid.uuid4(),
        )
        ack = await message_delete(
            actor=_actor(info),
            slug=delete.room,
            seq=delete.seq,
            client_id=delete.client_id,
            address=info.context.address,
        )
        return _ack(ack)

    @mutation
    async def react(self, info: Info, room: str, seq: int, emoji: str) -> Ack:
        """Put one's `emoji` on message `seq`. Idempotent."""
        return await _react(info, room, seq, emoji, on=True)

    @mutation
    async def unreact(self, info: Info, room: str, seq: int, emoji: str) -> Ack:
        """Take one's `emoji` off message `seq`. Idempotent."""
        return await _react(info, room, seq, emoji, on=False)

    @mutation
    async def mark_read(self, info: Info, room: str, seq: int) -> bool:
        """Move the caller's read marker forward to `seq` (never back)."""
        _valid(protocol.JoinFrame, type="join", room=room)
        marker = _valid(protocol.ReadMarker, seq=seq)
        await room_services.read_marker_set(actor=_actor(info), slug=room, seq=marker.seq)
        return True

    @mutation
    async def create_room(
        self, info: Info, slug: str, title: str = "", private: bool = False
    ) -> Room:
        """Make a room with the caller as its owner; `conflict` if the slug is taken."""
        user = _user(info)
        create = _valid(protocol.RoomCreate, slug=slug, title=title, private=private)
        await room_services.room_create(creator=user, **create.model_dump())
        return _room(await room_get_visible(slug=create.slug, actor=_actor(info)))

    @mutation
    async def invite_member(self, info: Info, room: str, username: str) -> bool:
        """Make a user a member (the room's owner or a moderator). Idempotent."""
        _valid(protocol.JoinFrame, type="join", room=room)
        await room_services.membership_invite(slug=room, inviter=_user(info), username=username)
        return True

    @mutation
    async def start_dm(self, info: Info, users: list[str], body: str, client_id: uuid.UUID) -> Ack:
        """Send a direct message to `users`, in the DM of exactly them and the
        caller (made on its first message): the ack names its room."""
        post = _valid(protocol.DmPost, users=users, body=body, client_id=client_id)
        ack = await dm_send(
            actor=_actor(info),
            usernames=post.users,
            body=post.body,
            client_id=post.client_id,
            address=info.context.address,
        )
        return _ack(ack)

    @mutation
    async def block(self, info: Info, user: str) -> Blocks:
        """Block a user: no DM from them, no mention of the caller by them."""
        return await _block(info, user, on=True)

    @mutation
    async def unblock(self, info: Info, user: str) -> Blocks:
        """Stop blocking a user."""
        return await _block(info, user, on=False)

    @mutation
    async def moderate(
        self,
        info: Info,
        room: str,
        action: ModerationAction,
        user: str,
        minutes: int | None = None,
        reason: str = "",
    ) -> Moderated:
        """Kick, ban, unban, mute, unmute, promote or demote `user` in `room`:
        the room's owner or a moderator (promote and demote: the owner)."""
        _valid(protocol.JoinFrame, type="join", room=room)
        moderation = _valid(
            protocol.Moderation, action=action, user=user, minutes=minutes, reason=reason
        )
        done = await room_moderate(
            slug=room, actor=_actor(info), moderation=moderation, address=info.context.address
        )
        return Moderated.from_pydantic(done)  # type: ignore[attr-defined]

    @mutation
    async def export_room(self, info: Info, room: str | None = None) -> Export:
        """Export a room (its owner), or with no room everything the caller
        wrote; `myEvents` follows its progress."""
        if room is not None:
            _valid(protocol.JoinFrame, type="join", room=room)
        export = await export_request(user=_user(info), slug=room)
        return Export.from_pydantic(export)  # type: ignore[attr-defined]


async def _react(info: Info, room: str, seq: int, emoji: str, *, on: bool) -> Ack:
    react = _valid(
        protocol.ReactFrame,
        type="react",
        room=room,
        seq=seq,
        emoji=emoji,
        on=on,
        client_id=uuid.uuid4(),
    )
    ack = await reaction_set(
        actor=_actor(info),
        slug=react.room,
        seq=react.seq,
        emoji=react.emoji,
        on=on,
        client_id=react.client_id,
        address=info.context.address,
    )
    return _ack(ack)


async def _block(info: Info, user: str, *, on: bool) -> Blocks:
    block = _valid(protocol.BlockFrame, type="block", user=user, on=on)
    blocks = await block_set(
        actor=_actor(info), username=block.user, on=on, address=info.context.address
    )
    return Blocks.from_pydantic(blocks)  # type: ignore[attr-defined]


def _over_the_socket() -> protocol.ChatError:
    return protocol.ChatError(
        protocol.ErrorCode.BAD_REQUEST,
        "subscriptions are served over WebSocket at /graphql/ (graphql-transport-ws)",
    )


@strawberry.type
class Subscription:
    @subscription
    async def room_events(
        self, info: Info, room: str, since: int | None = None
    ) -> AsyncGenerator[RoomEvent, None]:
        """The room's events as they commit: messages and their edits, deletes
        and reactions (`Message`, by `kind`), presence, typing and moderation.
        With `since`, first every entry after that seq, from the history,
        then live: no gap and no duplicate at the seam. Ends after `Left`."""
        raise _over_the_socket()
        yield  # an async generator; the socket streams its events (chat/realtime/graphql.py)

    @subscription
    async def my_events(self, info: Info) -> AsyncGenerator[MyEvent, None]:
        """The caller's own events: rooms and DMs they were added to
        (`Added`), and their exports' progress (`Export`). Signed-in users."""
        raise _over_the_socket()
        yield  # as above


def graphql_error(error: GraphQLError) -> GraphQLError:
    """The error as clients read it: the protocol's code in `extensions.code`
    (and `retryAfter`), and never a traceback."""
    original = error.original_error
    if isinstance(original, protocol.ChatError):
        extensions: dict[str, Any] = {"code": original.code.value}
        if original.retry_after is not None:
            extensions["retryAfter"] = original.retry_after
        message = original.detail
    elif original is None:  # the document: its syntax, its validity, the limits
        extensions, message = {"code": protocol.ErrorCode.BAD_REQUEST.value}, error.message
    else:
        logger.error("GraphQL resolver failed", exc_info=original)
        extensions = {"code": protocol.ErrorCode.INTERNAL_ERROR.value}
        message = "the server failed; try again"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ChatSchema(strawberry.Schema):
    """The schema, whose results carry every error through `graphql_error`."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = [graphql_error(e) for e in result.errors]
        return result

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Refusals are the client's: logged by `graphql_error` only when not."""


schema = ChatSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=limits.EXTENSIONS,
)

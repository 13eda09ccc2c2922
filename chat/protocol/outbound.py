"""What the server sends: a model per frame, `encode`, and the pages cut to
fit one frame; and the HTTP API's responses, from the same models."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    Strict,
)

from chat.protocol.errors import (
    ChatError,
    ErrorCode,
)
from chat.protocol.types import (
    MAX_BODY_CHARS,
    MAX_FRAME_BYTES,
    MAX_HISTORY_LIMIT,
    PROTOCOL_VERSION,
    AuditActionField,
    EntryKind,
    EntryKindField,
    ExportStateField,
    LeftReason,
    ModerationActionField,
    RoleField,
    RoomKind,
    RoomKindField,
    _Frame,
)

# --- Server to client -------------------------------------------------------


class Author(_Frame):
    name: str
    guest: bool


class Quote(_Frame):
    """The start of the message a reply answers, as it reads now."""

    seq: int
    author: Author
    body: str
    deleted: bool


class ReactionOut(_Frame):
    """One emoji on a message: how many reacted with it, and the first of them."""

    emoji: str
    count: int
    users: list[str]


class PreviewOut(_Frame):
    """What the page at a message's first URL says about itself."""

    url: str
    title: str
    description: str
    # An absolute http(s) URL of the page's image, or "".
    image: str


class AttachmentOut(_Frame):
    """An uploaded file: `url` serves it to those who may read its room."""

    id: int
    name: str
    content_type: str
    size: int
    # An image (png, jpeg, gif, webp): shown inline, by its thumbnail.
    image: bool
    url: str
    # For an image: its size in pixels, and a WebP of at most 480 x 360.
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None


class MessageOut(_Frame):
    """A stream entry, as it appears in `message`, `joined` and `history`: a
    message, or the edit, delete, react, unreact or link preview of message `target`."""

    type: Literal["message"] = "message"
    kind: EntryKindField = EntryKind.MESSAGE
    target: int | None = None
    room: str
    seq: int
    id: int
    author: Author
    body: str
    client_id: UUID
    created: datetime
    edited: datetime | None = None
    deleted: bool = False
    reply_to: int | None = None
    quote: Quote | None = None
    # A message's reactions; for a react or unreact entry, its target's.
    reactions: list[ReactionOut] = []
    # The users a message @-names as it now reads (who can read the room); for
    # an edit entry, its target's.
    mentions: list[str] = []
    # The link preview of a message's first URL, once fetched; for a preview
    # entry, its target's.
    preview: PreviewOut | None = None
    attachment: AttachmentOut | None = None


class Limits(_Frame):
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_body_chars: int = MAX_BODY_CHARS
    max_history_limit: int = MAX_HISTORY_LIMIT


class HelloEvent(_Frame):
    type: Literal["hello"] = "hello"
    protocol: int = PROTOCOL_VERSION
    user: Author
    limits: Limits = Limits()


class JoinedEvent(_Frame):
    type: Literal["joined"] = "joined"
    room: str
    title: str
    private: bool
    kind: RoomKindField = RoomKind.ROOM
    # A DM's members' usernames, by name; empty for a room.
    members: list[str] = []
    # False: guests may read the room but not write to it.
    guests_can_write: bool = True
    last_seq: int
    messages: list[MessageOut]
    # False when more messages follow `since` than one page holds: page on with
    # `history` and `after`.
    complete: bool


class AddedEvent(_Frame):
    """The user was made a member of a room (a new DM, an invitation): to each
    of their sockets, which may `join` it."""

    type: Literal["added"] = "added"
    room: str
    title: str
    kind: RoomKindField
    # A DM's members' usernames, by name; empty for a room.
    members: list[str] = []


class ExportEvent(_Frame):
    """A room export the user asked for (`room` null: an export of everything
    they wrote) moved on: to each of their sockets, as it is built, batch by
    batch, and once it is done or failed. Also the HTTP API's export status."""

    type: Literal["export"] = "export"
    id: UUID
    room: str | None
    state: ExportStateField
    # Entries written so far, of `total`.
    done: int
    total: int
    # The zip, for its requester only, once `done`.
    url: str | None
    expires: datetime


class LeftEvent(_Frame):
    """The socket is out of a room: it asked (`leave`), or was kicked, banned,
    removed from a private room's members, or (a guest) the room became
    `private`."""

    type: Literal["left"] = "left"
    room: str
    reason: Annotated[LeftReason, Strict(False)] = LeftReason.LEAVE


class AckEvent(_Frame):
    type: Literal["ack"] = "ack"
    client_id: UUID
    room: str
    seq: int


class HistoryEvent(_Frame):
    type: Literal["history"] = "history"
    room: str
    # The request's cursors, echoed so a client knows which page this is.
    before: int | None = None
    after: int | None = None
    messages: list[MessageOut]
    # True when this page reaches the end of the room's history in the
    # direction asked: seq 1 for `before`, last_seq for `after`.
    complete: bool


class MentionsEvent(_Frame):
    """A page of the mentions inbox, newest first, across rooms."""

    type: Literal["mentions"] = "mentions"
    before: int | None = None
    messages: list[MessageOut]
    # True when no older mention remains.
    complete: bool


class SearchEvent(_Frame):
    """Messages that match a search, newest first, across rooms (or in `room`)."""

    type: Literal["search"] = "search"
    q: str
    room: str | None = None
    before: int | None = None
    messages: list[MessageOut]
    # True when no older match remains.
    complete: bool


class TypingEvent(_Frame):
    type: Literal["typing"] = "typing"
    room: str
    user: Author


class PresenceEvent(_Frame):
    """Who is in a room. After `joined`: `count`, the number of people online,
    and `online`, the first PRESENCE_NAMES of them by name (all of them in a
    room that small). Then diffs as people come and go: `joined` and `left`
    (at most PRESENCE_NAMES names a frame) with the new `count`; past
    PRESENCE_NAMES changes at once, a snapshot like the first one."""

    type: Literal["presence"] = "presence"
    room: str
    online: list[Author] | None = None
    joined: list[Author] | None = None
    left: list[Author] | None = None
    count: int | None = None


class ModeratedEvent(_Frame):
    """A moderator acted on `user` in the room: to every socket in it."""

    type: Literal["moderated"] = "moderated"
    room: str
    action: ModerationActionField
    user: str
    by: str
    until: datetime | None = None
    reason: str = ""


class BlocksEvent(_Frame):
    """Who the user has blocked, by username: the reply to `block`."""

    type: Literal["blocks"] = "blocks"
    users: list[str]


class PongEvent(_Frame):
    type: Literal["pong"] = "pong"


class ErrorEvent(_Frame):
    type: Literal["error"] = "error"
    code: ErrorCode
    detail: str
    ref: str | None = None
    retry_after: float | None = None


ServerFrame = (
    HelloEvent
    | JoinedEvent
    | AddedEvent
    | ExportEvent
    | LeftEvent
    | MessageOut
    | AckEvent
    | HistoryEvent
    | MentionsEvent
    | SearchEvent
    | TypingEvent
    | PresenceEvent
    | ModeratedEvent
    | BlocksEvent
    | PongEvent
    | ErrorEvent
)


def fit_page(messages: list[MessageOut], *, oldest: bool) -> list[MessageOut]:
    """As many of a page's messages as fit in one frame (MAX_FRAME_BYTES, which
    daphne enforces on what it sends too), keeping the oldest or the newest.
    One message always fits: a body is at most 4,000 characters."""
    budget = MAX_FRAME_BYTES - 1024  # 1 KiB for the frame around them
    kept: list[MessageOut] = []
    for message in messages if oldest else reversed(messages):
        budget -= len(message.model_dump_json().encode()) + 1
        if budget < 0 and kept:
            break
        kept.append(message)
    return kept if oldest else kept[::-1]


def encode(frame: ServerFrame) -> str:
    """The JSON text of one outbound frame. Every field is present; unset ones are null."""
    return frame.model_dump_json()


def error_event(error: ChatError) -> ErrorEvent:
    return ErrorEvent(
        code=error.code, detail=error.detail, ref=error.ref, retry_after=error.retry_after
    )


# --- HTTP API (/api/v1/) responses -------------------------------------------


class RoomOut(_Frame):
    slug: str
    title: str
    private: bool
    kind: RoomKindField = RoomKind.ROOM
    # A DM's members' usernames, by name (its title lists them too, for
    # display only); empty for a room.
    members: list[str] = []
    guests_can_write: bool = True
    last_seq: int
    # The caller's role, or null when not a member (a public room read by anyone).
    role: RoleField | None
    # The caller's read marker, and others' messages after it.
    last_read_seq: int
    unread: int
    # Messages after the read marker that @-name the caller.
    mentions: int = 0


class ModerationLogOut(_Frame):
    """One entry of a room's audit log."""

    action: ModerationActionField | AuditActionField
    actor: str
    target: str
    seq: int | None
    until: datetime | None
    reason: str
    created: datetime


class MemberOut(_Frame):
    username: str
    role: RoleField
    joined: datetime


class TokenOut(_Frame):
    id: int
    name: str
    # The token's first characters, to tell tokens apart; not a secret.
    prefix: str
    created: datetime


class TokenCreated(TokenOut):
    # The secret: shown once, never stored.
    token: str


class ApiError(_Frame):
    """Every HTTP API error: the same codes as the `error` frame."""

    code: ErrorCode
    detail: str
    retry_after: float | None = None

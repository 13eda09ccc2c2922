"""The WebSocket protocol, version 1: every frame's schema, and nothing that does I/O.

`parse_frame(text)` is the single place where inbound frames are validated. It
returns one typed frame per `type`, or raises `ChatError` with the precise
`error` frame the client gets back. Services raise `ChatError` too, for faults
that need the database to see (a private room, a room that does not exist).

The outbound frames are pydantic models as well; `encode()` turns one into the
JSON text that goes on the wire. docs/protocol.md describes each frame.
"""

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
# No frame nests deeper than a few levels; a deeper one is refused before it
# is parsed (a parser's recursion has a limit, and hostile frames test it).
MAX_FRAME_DEPTH = 32
MAX_BODY_CHARS = 4000
MAX_HISTORY_LIMIT = 100
MAX_SEQ = 2**63 - 1
# Different emoji on one message; the first who reacted with each, by name.
MAX_EMOJI_PER_MESSAGE = 20
REACTION_NAMES_SHOWN = 20
# A reply's quote of the message it answers: its first characters.
QUOTE_CHARS = 200
# A `presence` frame names at most this many people (a room's first, by name,
# after a join; then per diff): its size is bounded whatever the room's.
PRESENCE_NAMES = 100
# @names in a message that count, the first of them; the pattern ends a name
# at a letter or digit, so "@ada," and "@ada." name ada.
MAX_MENTIONS = 20
MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.@+-]*\w)")
# An http(s) URL in a message's text, as the page also finds them: trailing
# punctuation is not part of it. The first one gets a link preview.
URL_PATTERN = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
# A group DM holds at most this many people, its starter included.
MAX_DM_MEMBERS = 8
# How many people one user may block (the `blocks` frame lists them all).
MAX_BLOCKS = 200
# The longest ban or mute with a duration: a year (without one, it lasts until lifted).
MAX_SANCTION_MINUTES = 525_600
# The hyphens are escaped so that browsers' `pattern` attributes accept them too.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,49}$"
GUEST_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$"
USERNAME_PATTERN = r"^[\w.@+-]+$"  # Django's own usernames


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    # HTTP API only: the thing to create exists already (a room's slug).
    CONFLICT = "conflict"
    # The server cannot do this now (the channel layer is away): retry after `retry_after`.
    UNAVAILABLE = "unavailable"
    # The server is further behind than it lets a send wait: resend after `retry_after`.
    OVERLOADED = "overloaded"
    # A fault on the server's side, never the client's: logged with a traceback.
    INTERNAL_ERROR = "internal_error"


class RoomKind(StrEnum):
    ROOM = "room"
    # A direct message: private, its members fixed at creation (2 to 8).
    DM = "dm"


class Role(StrEnum):
    """A member's role in a room."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"


class EntryKind(StrEnum):
    """What a stream entry is: a message, or a change of message `target`."""

    MESSAGE = "message"
    EDIT = "edit"
    DELETE = "delete"
    REACT = "react"
    UNREACT = "unreact"
    PREVIEW = "preview"


class ModerationAction(StrEnum):
    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    MUTE = "mute"
    UNMUTE = "unmute"
    PROMOTE = "promote"
    DEMOTE = "demote"


class AuditAction(StrEnum):
    """What a room's audit log records beside moderation actions."""

    # A moderator's (or site staff's) delete of another's message.
    DELETE = "delete"
    # An export by someone who is not the room's owner, by the permission to
    # export any room.
    EXPORT = "export"


class LeftReason(StrEnum):
    """Why a socket left a room: it asked, was kicked, banned or removed from
    a private room's members, or (a guest) the room became private."""

    LEAVE = "leave"
    KICK = "kick"
    BAN = "ban"
    REMOVED = "removed"
    PRIVATE = "private"


class ExportState(StrEnum):
    """Where an export is: waiting for a worker, being built, ready, or failed."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Enum fields take the plain strings the database holds (frames are strict otherwise).
RoomKindField = Annotated[RoomKind, Strict(False)]
RoleField = Annotated[Role, Strict(False)]
EntryKindField = Annotated[EntryKind, Strict(False)]
ModerationActionField = Annotated[ModerationAction, Strict(False)]
ExportStateField = Annotated[ExportState, Strict(False)]
AuditActionField = Annotated[AuditAction, Strict(False)]


class CloseCode(IntEnum):
    NORMAL = 1000
    # This server process is stopping (a restart or deploy): reconnect now, with
    # `since`; the proxy sends the new connection to another process.
    SERVICE_RESTART = 1012
    # The server cannot serve the socket now (the channel layer is away): reconnect later.
    TRY_AGAIN_LATER = 1013
    # The connection may not go on: no user and guests are not allowed, or the
    # API token it was opened with has been revoked.
    UNAUTHORIZED = 4401
    BAD_REQUEST = 4400
    # The client stopped reading and its backlog passed CHAT_MAX_OUTBOUND_BYTES:
    # reconnect and catch up with `since`.
    TOO_SLOW = 4008
    # The user has CHAT_MAX_SOCKETS_PER_USER connections open already (a guest:
    # guests at its address have CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS).
    TOO_MANY_CONNECTIONS = 4429


class ChatError(Exception):
    """A client fault. The consumer turns it into an `error` frame and carries
    on, or, for a connection that may not go on, closes it with `close`."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        ref: str | None = None,
        retry_after: float | None = None,
        close: "CloseCode | None" = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.ref = ref
        self.retry_after = retry_after
        self.close = close


def _clean_text(value: str) -> str:
    # PostgreSQL cannot store NUL, and a lone surrogate cannot be encoded as
    # UTF-8: both would fail at the database, so refuse them here.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


_EMOJI_PARTS = {"So", "Sk", "Mn", "Me", "Cf"}


def _emoji(value: str) -> str:
    # One emoji, possibly a sequence (skin tone, ZWJ family, flag, keycap):
    # a symbol (or a keycap, U+20E3) with its modifiers and joiners, and
    # nothing else, so a reaction cannot carry text.
    symbol = any(unicodedata.category(char) == "So" or char == "\u20e3" for char in value)
    parts = all(
        unicodedata.category(char) in _EMOJI_PARTS or char in "#*0123456789" for char in value
    )
    if not (symbol and parts):
        raise ValueError("must be one emoji")
    return value


Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="Room slug: a-z, 0-9, _ and -.")]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
TargetSeq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
Username = Annotated[
    str, Field(min_length=1, max_length=150, pattern=USERNAME_PATTERN, description="A username.")
]
Reason = Annotated[str, Field(max_length=500), AfterValidator(_clean_text)]
Emoji = Annotated[str, Field(min_length=1, max_length=16), AfterValidator(_emoji)]
Body = Annotated[
    str,
    Field(min_length=1, max_length=MAX_BODY_CHARS),
    AfterValidator(_clean_text),
    AfterValidator(_non_blank),
]


class _Frame(BaseModel):
    # Outbound frames always carry every field (null when unset), so the
    # schema marks fields with defaults as required in serialization mode.
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, json_schema_serialization_defaults_required=True
    )


# --- Client to server -------------------------------------------------------


class JoinFrame(_Frame):
    """Join a room. With `since`, the reply holds every message after it."""

    type: Literal["join"]
    room: Slug
    since: Seq | None = None


class LeaveFrame(_Frame):
    type: Literal["leave"]
    room: Slug


class SendFrame(_Frame):
    """Send a message, maybe in reply to message `reply_to`. The same
    `client_id` sent twice stores one message."""

    type: Literal["send"]
    room: Slug
    body: Body
    client_id: UUID
    reply_to: TargetSeq | None = None
    # An attachment's id, from `POST /api/v1/rooms/{slug}/attachments`.
    attachment: TargetSeq | None = None


DmUsers = Annotated[
    list[Username],
    Field(min_length=1, max_length=MAX_DM_MEMBERS - 1, description="Who to write to."),
]


class DmFrame(_Frame):
    """Send a direct message to `users` (1 to 7 of them): to the DM of exactly
    these people and the sender, made on its first message."""

    type: Literal["dm"]
    users: DmUsers
    body: Body
    client_id: UUID


class BlockFrame(_Frame):
    """Block (`on`: true) or unblock (`on`: false) `user`: a blocked user may
    not write to a DM you are in, and their @-mentions do not reach you.
    Idempotent."""

    type: Literal["block"]
    user: Username
    on: bool


class EditFrame(_Frame):
    """Change the text of one's own message `seq`. Idempotent by `client_id`."""

    type: Literal["edit"]
    room: Slug
    seq: TargetSeq
    body: Body
    client_id: UUID


class DeleteFrame(_Frame):
    """Delete one's own message `seq`. Idempotent by `client_id`."""

    type: Literal["delete"]
    room: Slug
    seq: TargetSeq
    client_id: UUID


class ReactFrame(_Frame):
    """Put (`on`: true) or take away (`on`: false) one's `emoji` on message
    `seq`. Idempotent: the same state twice is one reaction."""

    type: Literal["react"]
    room: Slug
    seq: TargetSeq
    emoji: Emoji
    on: bool
    client_id: UUID


class Moderation(BaseModel):
    """A moderation action on `user` in a room; `minutes` bounds a ban or mute
    (none: until lifted). Also the body of `POST /api/v1/rooms/{slug}/moderation`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: ModerationActionField
    user: Username
    minutes: Annotated[int, Field(ge=1, le=MAX_SANCTION_MINUTES)] | None = None
    reason: Reason = ""

    @field_validator("minutes")
    @classmethod
    def _minutes_for_sanctions(cls, minutes: int | None, info: ValidationInfo) -> int | None:
        if minutes is not None and info.data.get("action") not in ("ban", "mute"):
            raise ValueError("only a ban or a mute lasts for a time")
        return minutes


class ModerateFrame(_Frame, Moderation):
    """Kick, ban, unban, mute, unmute, promote or demote `user`: the room's
    owner or a moderator (promote and demote: the owner)."""

    type: Literal["moderate"]
    room: Slug


class ReadFrame(_Frame):
    """The user has read the room up to `seq`: moves the unread marker forward."""

    type: Literal["read"]
    room: Slug
    seq: Seq


class HistoryCursor(BaseModel):
    """Which page of history: the newest before `before`, the oldest after
    `after`, or the newest of all when neither is given. Also the query of
    `GET /api/v1/rooms/{slug}/messages`."""

    model_config = ConfigDict(extra="forbid")

    before: TargetSeq | None = None
    after: Seq | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> "HistoryCursor":
        if self.before is not None and self.after is not None:
            raise ValueError("give before or after, not both")
        return self


class HistoryFrame(_Frame, HistoryCursor):
    """A page of history: the newest before `before`, the oldest after `after`,
    or the newest of all when neither is given."""

    type: Literal["history"]
    room: Slug


class MentionsCursor(BaseModel):
    """Which page of the mentions inbox: the newest, or those older than
    message `before` (a message `id`). Also the query of `GET /api/v1/mentions`."""

    model_config = ConfigDict(extra="forbid")

    before: TargetSeq | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] | None = None


class SearchQuery(BaseModel):
    """What to search for: words in message bodies, in one room or in all the
    user may read; `before` (a message id) pages back. Also the query of
    `GET /api/v1/search`."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_text)]
    room: Slug | None = None
    before: TargetSeq | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] | None = None

    @field_validator("q")
    @classmethod
    def _some_words(cls, q: str) -> str:
        return _non_blank(q)


class SearchFrame(_Frame, SearchQuery):
    """Search the messages of the rooms the user may read, newest first."""

    type: Literal["search"]


class MentionsFrame(_Frame, MentionsCursor):
    """A page of the user's mentions inbox: messages that @-named them, newest first."""

    type: Literal["mentions"]


class TypingFrame(_Frame):
    type: Literal["typing"]
    room: Slug


class PingFrame(_Frame):
    type: Literal["ping"]


AnyClientFrame = (
    JoinFrame
    | LeaveFrame
    | SendFrame
    | DmFrame
    | BlockFrame
    | EditFrame
    | DeleteFrame
    | ReactFrame
    | ModerateFrame
    | ReadFrame
    | HistoryFrame
    | MentionsFrame
    | SearchFrame
    | TypingFrame
    | PingFrame
)
_client_frame = TypeAdapter(Annotated[AnyClientFrame, Field(discriminator="type")])
CLIENT_FRAME_TYPES = tuple(
    model.model_fields["type"].annotation.__args__[0] for model in AnyClientFrame.__args__
)

_TOO_LARGE_ERRORS = {"string_too_long", "too_long"}


def parse_frame(text: str) -> AnyClientFrame:
    """Validate one inbound text frame, or raise `ChatError` saying what is wrong."""
    if len(text) > MAX_FRAME_BYTES or (
        len(text) * 4 > MAX_FRAME_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
    ):
        raise ChatError(ErrorCode.TOO_LARGE, f"frame exceeds {MAX_FRAME_BYTES} bytes")
    if _nesting(text) > MAX_FRAME_DEPTH:
        raise ChatError(ErrorCode.BAD_REQUEST, f"JSON nested deeper than {MAX_FRAME_DEPTH} levels")
    try:
        return _client_frame.validate_json(text)
    except ValidationError as exc:
        raise _error_from_validation(exc, text) from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (outside strings).
    Counting brackets first keeps the scan off the usual, shallow frame."""
    if text.count("[") + text.count("{") <= MAX_FRAME_DEPTH:
        return 0
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _error_from_validation(exc: ValidationError, text: str) -> ChatError:
    first = exc.errors(include_url=False)[0]
    kind = first["type"]
    ref = _ref_of(text)
    if kind == "json_invalid":
        return ChatError(ErrorCode.BAD_REQUEST, first["msg"])
    if kind == "dict_type":
        return ChatError(ErrorCode.BAD_REQUEST, "a frame must be a JSON object", ref=ref)
    if kind == "union_tag_not_found":
        return ChatError(ErrorCode.BAD_REQUEST, "missing field 'type'", ref=ref)
    if kind == "union_tag_invalid":
        allowed = ", ".join(CLIENT_FRAME_TYPES)
        return ChatError(
            ErrorCode.BAD_REQUEST, f"unknown frame type; expected one of: {allowed}", ref=ref
        )
    # The first location item is the frame type (the union's tag); drop it.
    return _field_error(first, first["loc"][1:], default="frame", ref=ref)


# What each pattern allows, said to whoever sent a value it refuses.
_PATTERN_HINTS = {
    SLUG_PATTERN: "not allowed: use 1-50 of a-z, 0-9, '_' and '-', starting with a letter or digit",
    USERNAME_PATTERN: "not a username: use letters, digits and '@', '.', '+', '-', '_'",
}


def _field_error(
    error: Mapping[str, Any], loc: tuple, *, default: str, ref: str | None = None
) -> ChatError:
    field = ".".join(str(part) for part in loc) or default
    code = ErrorCode.TOO_LARGE if error["type"] in _TOO_LARGE_ERRORS else ErrorCode.BAD_REQUEST
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERN_HINTS.get(error.get("ctx", {}).get("pattern"), "not allowed")
    else:
        message = error["msg"].removeprefix("Value error, ")
    return ChatError(code, f"{field}: {message}", ref=ref)


def parse_guest_name(name: str) -> str:
    """Validate a guest name from the `name` query parameter."""
    if not re.fullmatch(GUEST_NAME_PATTERN, name):
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            "guest name not allowed: use 1-32 of A-Z, a-z, 0-9, '_', '.' and '-',"
            " starting with a letter or digit",
            close=CloseCode.BAD_REQUEST,
        )
    return name


def mentioned_names(body: str) -> list[str]:
    """The usernames @-named in a message body, each once, in order (at most MAX_MENTIONS)."""
    names = dict.fromkeys(match.group(1) for match in MENTION_PATTERN.finditer(body))
    return list(names)[:MAX_MENTIONS]


def first_url(body: str) -> str | None:
    """The first http(s) URL in a message body, if any (at most 2,000 characters)."""
    match = URL_PATTERN.search(body)
    return match.group(0) if match and len(match.group(0)) <= 2000 else None


def _ref_of(text: str) -> str | None:
    """The offending frame's client_id, else its type: echoed in `error.ref`."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("client_id", "type"):
        value = data.get(key)
        if isinstance(value, str) and len(value) <= 64:
            return value
    return None


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
    (at most PRESENCE_NAMES names a frame) with the new `count`."""

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


# --- HTTP API (/api/v1/) ------------------------------------------------------
# Request bodies are validated here too, strictly and with the same field
# types as frames. django-ninja hands a body over as parsed JSON, in which a
# UUID is still a string, so UUID fields alone accept strings.

Title = Annotated[str, Field(max_length=200), AfterValidator(_clean_text)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RoomCreate(_Request):
    slug: Slug
    title: Title = ""
    private: bool = False


class RoomUpdate(_Request):
    """Change a room's title, privacy, or whether guests may write to it: its
    owner or a moderator."""

    title: Annotated[Title, AfterValidator(_non_blank)] | None = None
    private: bool | None = None
    guests_can_write: bool | None = None


class MessagePost(_Request):
    """Post a message. The same `client_id` posted twice stores one message."""

    body: Body
    client_id: Annotated[UUID, Field(strict=False)]
    reply_to: TargetSeq | None = None
    attachment: TargetSeq | None = None


class DmPost(_Request):
    """Send a direct message; the same `client_id` posted twice stores one."""

    users: DmUsers
    body: Body
    client_id: Annotated[UUID, Field(strict=False)]


class ReadMarker(_Request):
    seq: Seq


class TokenCreate(_Request):
    name: Annotated[str, Field(max_length=100), AfterValidator(_clean_text)] = ""


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


HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.UNAVAILABLE: 503,  # last: a bare 503 from elsewhere reads as unavailable
}


# django-ninja's names for where a request's input came from, not field names.
_REQUEST_PARTS = {"body", "query", "path", "payload", "cursor"}


def error_from_validation(errors: list[dict]) -> ChatError:
    """A request's validation errors (django-ninja's list) as one ChatError."""
    first = errors[0]
    loc = tuple(part for part in first["loc"] if part not in _REQUEST_PARTS)
    return _field_error(first, loc, default="request")

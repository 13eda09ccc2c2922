"""What a client sends: a model per frame (a discriminated union on `type`),
`parse_frame`, the one place where inbound frames are validated, and the
HTTP API's request bodies and queries, built from the same field types."""

import json
import re
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chat.protocol.errors import (
    ChatError,
    CloseCode,
    ErrorCode,
    _field_error,
)
from chat.protocol.types import (
    GUEST_NAME_PATTERN,
    MAX_DM_MEMBERS,
    MAX_FRAME_BYTES,
    MAX_FRAME_DEPTH,
    MAX_HISTORY_LIMIT,
    MAX_SANCTION_MINUTES,
    Body,
    Emoji,
    ModerationActionField,
    Reason,
    Seq,
    Slug,
    TargetSeq,
    Title,
    Username,
    _clean_text,
    _Frame,
    _non_blank,
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


# --- HTTP API (/api/v1/) ------------------------------------------------------
# Request bodies are validated here too, strictly and with the same field
# types as frames. django-ninja hands a body over as parsed JSON, in which a
# UUID is still a string, so UUID fields alone accept strings.


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

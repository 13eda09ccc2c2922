"""The protocol's vocabulary: its version and limits, the enums of the wire
(which the models' choices are built from), and the constrained strings and
numbers that frames and HTTP bodies share."""

import re
import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
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


Title = Annotated[str, Field(max_length=200), AfterValidator(_clean_text)]


class _Frame(BaseModel):
    # Outbound frames always carry every field (null when unset), so the
    # schema marks fields with defaults as required in serialization mode.
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, json_schema_serialization_defaults_required=True
    )


def mentioned_names(body: str) -> list[str]:
    """The usernames @-named in a message body, each once, in order (at most MAX_MENTIONS)."""
    names = dict.fromkeys(match.group(1) for match in MENTION_PATTERN.finditer(body))
    return list(names)[:MAX_MENTIONS]


def first_url(body: str) -> str | None:
    """The first http(s) URL in a message body, if any (at most 2,000 characters)."""
    match = URL_PATTERN.search(body)
    return match.group(0) if match and len(match.group(0)) <= 2000 else None

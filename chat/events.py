"""The events that travel on the channel layer, between processes.

Each is a TypedDict whose `type` is the handler that receives it (Channels
maps "room.event" to `room_event`), with the one builder that makes it. They
are built in chat/services/broadcast.py, and read by the process's relay
(room and user groups, for this process's sockets). Unlike frames
they never reach a client, so they are not in the protocol's documents; they
carry a frame already encoded where one is due, so that it is encoded once
for every socket.
"""

import time
from typing import Literal, TypedDict

from chat.protocol import LeftReason


class RoomEvent(TypedDict):
    """A frame for every socket in a room (a room group)."""

    type: Literal["room.event"]
    room: str
    seq: int | None  # a stream entry's seq: sockets drop one they hold already
    target: int | None  # the message an edit, delete or reaction entry changes
    kind: str | None  # a stream entry's kind (EntryKind): a delete erases its target's entries
    exclude: str | None  # a channel that should not get it (the typist)
    frame: str  # the frame's type, for metrics
    text: str  # the encoded frame
    committed: float  # wall clock of the commit, for the latency metric
    origin: str  # the publishing process (broadcast.ORIGIN): it delivered its own already


class RoomAccess(TypedDict):
    """Who may read or write the room changed (a room group), for user
    `user_id` or (None) anyone: each process checks its sockets in the room
    again, and those that may no longer read it leave."""

    type: Literal["room.access"]
    room: str
    user_id: int | None


class RoomRemoved(TypedDict):
    """A user's sockets leave a room, saying why (a user group)."""

    type: Literal["room.removed"]
    user_id: int | None  # whose sockets (the relay routes by it); None: a guest's, locally
    room: str
    reason: LeftReason


class UserFrame(TypedDict):
    """A frame for each of a user's sockets (a user group): `added`, `export`."""

    type: Literal["user.frame"]
    user_id: int
    text: str


class CredentialsRevoked(TypedDict):
    """A token or session ended, or (neither named) the user was deactivated (a user group)."""

    type: Literal["credentials.revoked"]
    user_id: int
    token_id: int | None
    session_key: str | None
    reason: str


class PasswordChanged(TypedDict):
    """The user's password changed (a user group): every socket of theirs
    that a session authenticated closes, but those of session `kept_from`
    (the one that changed it), which Django renamed `kept_to`."""

    type: Literal["password.changed"]
    user_id: int
    kept_from: str | None
    kept_to: str | None


RoomGroupEvent = RoomEvent | RoomAccess
UserGroupEvent = RoomRemoved | UserFrame | CredentialsRevoked | PasswordChanged


def room_event(
    *,
    room: str,
    frame: str,
    text: str,
    seq: int | None,
    exclude: str | None,
    target: int | None = None,
    kind: str | None = None,
    origin: str = "",
) -> RoomEvent:
    committed = time.time()  # wall clock: shared by the hosts
    return RoomEvent(
        type="room.event",
        room=room,
        seq=seq,
        target=target,
        kind=kind,
        exclude=exclude,
        frame=frame,
        text=text,
        committed=committed,
        origin=origin,
    )


def room_access(*, room: str, user_id: int | None = None) -> RoomAccess:
    return RoomAccess(type="room.access", room=room, user_id=user_id)


def room_removed(*, user_id: int | None, room: str, reason: LeftReason) -> RoomRemoved:
    return RoomRemoved(type="room.removed", user_id=user_id, room=room, reason=reason)


def user_frame(*, user_id: int, text: str) -> UserFrame:
    return UserFrame(type="user.frame", user_id=user_id, text=text)


def credentials_revoked(
    *, user_id: int, reason: str, token_id: int | None, session_key: str | None
) -> CredentialsRevoked:
    return CredentialsRevoked(
        type="credentials.revoked",
        user_id=user_id,
        token_id=token_id,
        session_key=session_key,
        reason=reason,
    )


def password_changed(
    *, user_id: int, kept_from: str | None, kept_to: str | None
) -> PasswordChanged:
    return PasswordChanged(
        type="password.changed", user_id=user_id, kept_from=kept_from, kept_to=kept_to
    )

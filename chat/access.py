"""Who may do what in a room: the one place the access rules live.

Each rule is a pure function of plain facts (the room, the actor's role
and sanctions in it, the target's role, blocks) that returns the ChatError
refusing the action, or None when it is allowed. Nothing here reads the
database or a socket: selectors and services fetch the facts (under the
room's row lock where a write depends on them) and call these, so the whole
actor x action matrix is tested as a table (tests/unit/test_access.py).

The rules:
- A private room does not exist for a non-member: the same `not_found` as a
  missing room, so its name cannot be probed.
- Reading and writing need the room readable and no ban in force; writing
  also needs no mute, and (for a guest) `guests_can_write`.
- Managing (moderation, settings, invitations, the audit log) needs the
  owner's or a moderator's role.
- A manager acts on members; only the owner acts on moderators; nobody acts
  on the owner or on themselves; only the owner changes roles.
- A message is changed by its signed-in author only; a moderator (or site
  staff) may also delete it. Guests cannot react.
- In a DM, someone blocked by a member may only take back what they wrote.
- The site's own rooms (CHAT_DEFAULT_ROOMS) have no owner: site staff
  manage them as their owner, and appoint their moderators.
- A room's export is asked for by its owner, who may read it; anyone else
  needs the explicit permission to export any room (audited). It is
  downloaded by whoever asked for it only.
"""

from datetime import datetime
from typing import Protocol

from chat.protocol import ChatError, ErrorCode, ModerationAction, Role


class RoomFacts(Protocol):
    """What the rules need to know of a room: a `Room` row, read or not."""

    @property
    def private(self) -> bool: ...
    @property
    def guests_can_write(self) -> bool: ...


class SanctionFacts(Protocol):
    """A ban or mute in force: a `Sanction` row, `kind` "ban" or "mute"."""

    @property
    def kind(self) -> str: ...
    @property
    def until(self) -> datetime | None: ...
    @property
    def reason(self) -> str: ...


MANAGERS = (Role.OWNER, Role.MODERATOR)
# The moderation actions that only the owner may take.
ROLE_CHANGES = (ModerationAction.PROMOTE, ModerationAction.DEMOTE)


def role_effective(*, role: str | None, staff: bool, site_room: bool) -> str | None:
    """The role the rules see: a membership's `role`, or owner for site
    `staff` in one of the site's rooms (`site_room`), which no user owns."""
    return Role.OWNER if staff and site_room else role


def _no_room(slug: str) -> ChatError:
    return ChatError(ErrorCode.NOT_FOUND, f"no room '{slug}'")


def room_refusal(
    *,
    room: RoomFacts | None,
    slug: str,
    member: bool,
    sanction: SanctionFacts | None = None,
    guest_writing: bool = False,
) -> ChatError | None:
    """Why an actor may not read and write a room. `member`: the actor is a
    signed-in member of it; `sanction`: a ban or mute of the actor in force
    there (a mute refuses writes only: pass it for those); `guest_writing`:
    the actor is a guest about to write."""
    if room is None or (room.private and not member):
        return _no_room(slug)
    if guest_writing and not room.guests_can_write:
        return ChatError(ErrorCode.FORBIDDEN, f"sign in to write in room '{slug}'")
    if sanction is not None:
        until = f"until {sanction.until:%Y-%m-%d %H:%M} UTC" if sanction.until else "until lifted"
        verb = "banned from" if sanction.kind == "ban" else "muted in"
        reason = f": {sanction.reason}" if sanction.reason else ""
        return ChatError(ErrorCode.FORBIDDEN, f"you are {verb} room '{slug}' {until}{reason}")
    return None


def room_manager_refusal(
    *, room: RoomFacts | None, slug: str, role: str | None
) -> ChatError | None:
    """Why a user with `role` in the room (None: not a member, or a guest)
    may not manage it."""
    if room is None or (room.private and role is None):
        return _no_room(slug)
    if role not in MANAGERS:
        return ChatError(ErrorCode.FORBIDDEN, "only the room's owner or a moderator may do this")
    return None


def member_target_refusal(*, mine: str | None, theirs: str | None, action: str) -> ChatError | None:
    """Why a manager with role `mine` may not act on someone with role
    `theirs` in the room: no one acts on the owner, and only the owner on a
    moderator. The same rule for every action and path."""
    if theirs == Role.OWNER or (theirs == Role.MODERATOR and mine != Role.OWNER):
        return ChatError(ErrorCode.FORBIDDEN, f"a {mine} cannot {action} the room's {theirs}")
    return None


def moderation_refusal(
    *,
    room: RoomFacts | None,
    slug: str,
    mine: str | None,
    target: str,
    found: bool,
    theirs: str | None,
    action: str,
    oneself: bool,
) -> ChatError | None:
    """Why a user with role `mine` may not take moderation `action` on user
    `target` (`found`: an active user of that name exists), whose role is
    `theirs` (`oneself`: the target is the actor). Only a manager learns
    whether the target exists."""
    if refusal := room_manager_refusal(room=room, slug=slug, role=mine):
        return refusal
    if not found:
        return ChatError(ErrorCode.NOT_FOUND, f"no user {target!r}")
    if oneself:
        return ChatError(ErrorCode.BAD_REQUEST, "you cannot moderate yourself")
    if action in ROLE_CHANGES and mine != Role.OWNER:
        return ChatError(ErrorCode.FORBIDDEN, "only the room's owner may change roles")
    return member_target_refusal(mine=mine, theirs=theirs, action=action)


def member_removal_refusal(
    *,
    room: RoomFacts | None,
    slug: str,
    mine: str | None,
    target: str,
    theirs: str | None,
    oneself: bool,
    dm: bool,
) -> ChatError | None:
    """Why a user with role `mine` may not take user `target`, whose role is
    `theirs` (None: not a member), out of the room (`oneself`: leave it;
    `dm`: it is a direct message)."""
    if not oneself and (refusal := room_manager_refusal(room=room, slug=slug, role=mine)):
        return refusal
    if room is None or theirs is None:
        return ChatError(ErrorCode.NOT_FOUND, f"{target!r} is not a member")
    if oneself and theirs == Role.OWNER:
        return ChatError(ErrorCode.FORBIDDEN, "the owner cannot be removed")
    if not oneself and (
        refusal := member_target_refusal(mine=mine, theirs=theirs, action="remove")
    ):
        return refusal
    if dm:
        return ChatError(ErrorCode.BAD_REQUEST, "the members of a direct message are fixed")
    return None


def site_room_privacy_refusal(*, site_room: bool) -> ChatError | None:
    """Why a room may not be made private: the site's rooms are open to all."""
    if site_room:
        return ChatError(ErrorCode.FORBIDDEN, "the site's rooms stay public: anyone may open them")
    return None


def export_refusal(
    *, room: RoomFacts | None, slug: str, readable: bool, role: str | None, any_room: bool
) -> ChatError | None:
    """Why a user with `role` in the room, who may (`readable`) or may not
    read it, may not export it. `any_room`: they hold the permission to
    export any room (compliance), which is audited."""
    if room is None or (not readable and not any_room):
        return _no_room(slug)
    if role != Role.OWNER and not any_room:
        return ChatError(ErrorCode.FORBIDDEN, "only the room's owner may export it")
    return None


def message_change_refusal(*, author: bool, deleting: bool, manager: bool) -> ChatError | None:
    """Why an actor may not edit or delete a message. `author`: they are its
    signed-in author; `manager`: they manage its room (or are site staff)."""
    if author or (deleting and manager):
        return None
    return ChatError(
        ErrorCode.FORBIDDEN,
        "only its signed-in author (or, to delete it, a moderator) may change a message",
    )


def reaction_refusal(*, guest: bool) -> ChatError | None:
    """Why an actor may not react: guests cannot."""
    return ChatError(ErrorCode.FORBIDDEN, "sign in to react") if guest else None


def dm_blocked_refusal(*, blocked: bool, undoing: bool) -> ChatError | None:
    """Why someone blocked by a member of a DM may not write there: they may
    only take back what they wrote (`undoing`: a delete or unreact)."""
    if blocked and not undoing:
        return ChatError(ErrorCode.FORBIDDEN, "someone in this DM has blocked you")
    return None

"""The access rules as tables: every actor x action, with no socket and no database."""

from datetime import UTC, datetime

import pytest

from chat import access
from chat.models import Room, Sanction
from chat.protocol import ErrorCode, ModerationAction, Role

# The facts are rows, as selectors read them; none is saved.
PUBLIC = Room(slug="lobby", private=False)
READ_ONLY = Room(slug="lobby", private=False, guests_can_write=False)
PRIVATE = Room(slug="den", private=True)
BAN = Sanction(kind="ban", until=datetime(2030, 1, 2, 3, 4, tzinfo=UTC), reason="spam")
MUTE = Sanction(kind="mute")

OK = None
FORBIDDEN = ErrorCode.FORBIDDEN
NOT_FOUND = ErrorCode.NOT_FOUND
BAD_REQUEST = ErrorCode.BAD_REQUEST


def code(refusal):
    return None if refusal is None else refusal.code


@pytest.mark.parametrize(
    ("room", "member", "sanction", "guest_writing", "expected"),
    [
        (None, True, None, False, NOT_FOUND),
        (PUBLIC, False, None, False, OK),
        (PUBLIC, False, None, True, OK),
        (READ_ONLY, False, None, True, FORBIDDEN),  # a guest writing
        (READ_ONLY, False, None, False, OK),  # a guest reading, or a user writing
        (PRIVATE, False, None, False, NOT_FOUND),  # not there for a non-member
        (PRIVATE, True, None, False, OK),
        (PUBLIC, False, BAN, False, FORBIDDEN),
        (PRIVATE, True, MUTE, False, FORBIDDEN),
        (PRIVATE, False, BAN, False, NOT_FOUND),  # a non-member learns nothing more
    ],
)
def test_reading_and_writing_a_room(room, member, sanction, guest_writing, expected):
    refusal = access.room_refusal(
        room=room, slug="x", member=member, sanction=sanction, guest_writing=guest_writing
    )
    assert code(refusal) == expected


def test_a_sanction_refusal_says_what_and_until_when():
    banned = access.room_refusal(room=PUBLIC, slug="lobby", member=False, sanction=BAN)
    assert banned.detail == "you are banned from room 'lobby' until 2030-01-02 03:04 UTC: spam"
    muted = access.room_refusal(room=PUBLIC, slug="lobby", member=True, sanction=MUTE)
    assert muted.detail == "you are muted in room 'lobby' until lifted"


@pytest.mark.parametrize(
    ("room", "role", "expected"),
    [
        (PUBLIC, Role.OWNER, OK),
        (PUBLIC, Role.MODERATOR, OK),
        (PUBLIC, Role.MEMBER, FORBIDDEN),
        (PUBLIC, None, FORBIDDEN),
        (PRIVATE, Role.MODERATOR, OK),
        (PRIVATE, Role.MEMBER, FORBIDDEN),
        (PRIVATE, None, NOT_FOUND),
        (None, Role.OWNER, NOT_FOUND),
    ],
)
def test_managing_a_room(room, role, expected):
    assert code(access.room_manager_refusal(room=room, slug="x", role=role)) == expected


ACTORS = [Role.OWNER, Role.MODERATOR, Role.MEMBER, None]  # None: not a member, or a guest
TARGETS = [Role.OWNER, Role.MODERATOR, Role.MEMBER, None]


def _moderation_expected(mine, theirs, action):
    if mine not in (Role.OWNER, Role.MODERATOR):
        return FORBIDDEN
    if action in (ModerationAction.PROMOTE, ModerationAction.DEMOTE) and mine != Role.OWNER:
        return FORBIDDEN
    if theirs == Role.OWNER or (theirs == Role.MODERATOR and mine != Role.OWNER):
        return FORBIDDEN
    return OK


@pytest.mark.parametrize("action", list(ModerationAction))
@pytest.mark.parametrize("theirs", TARGETS)
@pytest.mark.parametrize("mine", ACTORS)
def test_the_moderation_matrix(mine, theirs, action):
    """The owner acts on anyone else; a moderator on members and non-members;
    only the owner changes roles; nobody acts on the owner."""
    refusal = access.moderation_refusal(
        room=PUBLIC,
        slug="lobby",
        mine=mine,
        target="bob",
        found=True,
        theirs=theirs,
        action=action,
        oneself=False,
    )
    assert code(refusal) == _moderation_expected(mine, theirs, action)


@pytest.mark.parametrize("mine", ACTORS)
def test_nobody_moderates_themselves_and_only_managers_learn_who_exists(mine):
    manager = mine in (Role.OWNER, Role.MODERATOR)
    himself = access.moderation_refusal(
        room=PUBLIC,
        slug="lobby",
        mine=mine,
        target="me",
        found=True,
        theirs=mine,
        action=ModerationAction.MUTE,
        oneself=True,
    )
    assert code(himself) == (BAD_REQUEST if manager else FORBIDDEN)
    nobody = access.moderation_refusal(
        room=PUBLIC,
        slug="lobby",
        mine=mine,
        target="ghost",
        found=False,
        theirs=None,
        action=ModerationAction.BAN,
        oneself=False,
    )
    assert code(nobody) == (NOT_FOUND if manager else FORBIDDEN)


def test_a_private_room_is_not_there_for_a_non_member_moderator_attempt():
    refusal = access.moderation_refusal(
        room=PRIVATE,
        slug="den",
        mine=None,
        target="bob",
        found=True,
        theirs=Role.MEMBER,
        action=ModerationAction.KICK,
        oneself=False,
    )
    assert code(refusal) == NOT_FOUND


@pytest.mark.parametrize(
    ("mine", "theirs", "oneself", "dm", "expected"),
    [
        (Role.MEMBER, Role.MEMBER, True, False, OK),  # leaving
        (Role.MODERATOR, Role.MODERATOR, True, False, OK),
        (Role.OWNER, Role.OWNER, True, False, FORBIDDEN),  # the owner cannot leave
        (Role.MEMBER, Role.MEMBER, True, True, BAD_REQUEST),  # a DM's members are fixed
        (None, None, True, False, NOT_FOUND),
        (Role.OWNER, Role.MODERATOR, False, False, OK),
        (Role.OWNER, Role.MEMBER, False, False, OK),
        (Role.MODERATOR, Role.MEMBER, False, False, OK),
        (Role.MODERATOR, Role.MODERATOR, False, False, FORBIDDEN),
        (Role.MODERATOR, Role.OWNER, False, False, FORBIDDEN),
        (Role.MEMBER, Role.MEMBER, False, False, FORBIDDEN),
        (None, Role.MEMBER, False, False, FORBIDDEN),
        (Role.OWNER, None, False, False, NOT_FOUND),
    ],
)
def test_taking_a_member_out(mine, theirs, oneself, dm, expected):
    refusal = access.member_removal_refusal(
        room=PUBLIC, slug="lobby", mine=mine, target="bob", theirs=theirs, oneself=oneself, dm=dm
    )
    assert code(refusal) == expected


@pytest.mark.parametrize(
    ("author", "deleting", "manager", "expected"),
    [
        (True, False, False, OK),
        (True, True, False, OK),
        (False, True, True, OK),  # a moderator's (or staff's) delete
        (False, False, True, FORBIDDEN),  # nobody edits another's message
        (False, True, False, FORBIDDEN),
        (False, False, False, FORBIDDEN),
    ],
)
def test_changing_a_message(author, deleting, manager, expected):
    refusal = access.message_change_refusal(author=author, deleting=deleting, manager=manager)
    assert code(refusal) == expected


def test_guests_cannot_react_and_the_blocked_may_only_undo():
    assert code(access.reaction_refusal(guest=True)) == FORBIDDEN
    assert access.reaction_refusal(guest=False) is None
    assert code(access.dm_blocked_refusal(blocked=True, undoing=False)) == FORBIDDEN
    assert access.dm_blocked_refusal(blocked=True, undoing=True) is None
    assert access.dm_blocked_refusal(blocked=False, undoing=False) is None


@pytest.mark.parametrize(
    ("room", "readable", "role", "any_room", "expected"),
    [
        (PUBLIC, True, Role.OWNER, False, OK),
        (PUBLIC, True, Role.MODERATOR, False, FORBIDDEN),
        (PUBLIC, True, None, False, FORBIDDEN),
        (PRIVATE, False, None, False, NOT_FOUND),  # staff without the permission too
        (PRIVATE, False, None, True, OK),  # by the permission: audited
        (PUBLIC, False, Role.OWNER, False, NOT_FOUND),  # banned from it
        (None, False, None, True, NOT_FOUND),
    ],
)
def test_exporting_a_room_follows_reading_it(room, readable, role, any_room, expected):
    refusal = access.export_refusal(
        room=room, slug="x", readable=readable, role=role, any_room=any_room
    )
    assert code(refusal) == expected


@pytest.mark.parametrize(
    ("role", "staff", "site_room", "expected"),
    [
        (None, True, True, Role.OWNER),  # site staff manage the site's rooms
        (Role.MEMBER, True, True, Role.OWNER),
        (None, True, False, None),  # and nothing else for being staff
        (Role.MODERATOR, False, True, Role.MODERATOR),  # whom staff appointed
        (None, False, True, None),  # the first to join owns nothing
    ],
)
def test_who_manages_the_sites_rooms(role, staff, site_room, expected):
    assert access.role_effective(role=role, staff=staff, site_room=site_room) == expected


def test_the_sites_rooms_stay_public():
    assert code(access.site_room_privacy_refusal(site_room=True)) == FORBIDDEN
    assert access.site_room_privacy_refusal(site_room=False) is None

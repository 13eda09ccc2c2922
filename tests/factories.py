"""Rows for tests' setup, written directly: what the services would leave
behind, without their checks and broadcasts (tests of those call the services)."""

import secrets

from chat.models import ApiToken, Membership, Room
from chat.protocol import Role
from chat.selectors.tokens import token_hash
from chat.services.tokens import TOKEN_PREFIX


def room_make(*, slug: str, creator, title: str = "", private: bool = False) -> Room:
    """A room owned by its creator (one of the site's, made by `migrate`, is
    taken over: tests of the site's rooms use them as they are)."""
    room, _ = Room.objects.update_or_create(
        slug=slug, defaults={"title": title or slug, "private": private, "creator": creator}
    )
    Membership.objects.create(room=room, user=creator, role=Role.OWNER)
    return room


def member_make(*, room: Room, user, role: str = Role.MEMBER) -> Membership:
    """The user's membership of the room (an existing one is kept)."""
    membership, _ = Membership.objects.get_or_create(room=room, user=user, defaults={"role": role})
    return membership


def token_make(*, user, name: str = "") -> str:
    """A new API token of the user; returns its secret."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name, key_hash=token_hash(secret), prefix=secret[:12])
    return secret

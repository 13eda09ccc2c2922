"""Reading users, and the credentials open sockets hold."""

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from chat.models import ApiToken, Profile


async def username_taken(*, name: str) -> bool:
    """Whether a user has this username, in any case (active or not)."""
    return await get_user_model().objects.filter(username__iexact=name).aexists()


async def credentials_valid(
    *, users: set[int], tokens: set[int], sessions: set[str]
) -> tuple[set[int], set[int], set[str]]:
    """Which of these users are active, tokens exist and sessions still hold:
    what open sockets were authenticated with. A session holds while it is
    unexpired and its user's password is the one it signed in with (Django's
    session auth hash). One query for each kind asked."""
    hashes: dict[str, str] = {}
    if users:
        accounts = get_user_model().objects.filter(pk__in=users, is_active=True)
        hashes = {str(user.pk): user.get_session_auth_hash() async for user in accounts}
    alive: set[int] = set()
    if tokens:
        alive = {
            pk async for pk in ApiToken.objects.filter(pk__in=tokens).values_list("pk", flat=True)
        }
    live: set[str] = set()
    if sessions:
        unexpired = Session.objects.filter(session_key__in=sessions, expire_date__gt=timezone.now())
        async for key, data in unexpired.values_list("session_key", "session_data"):
            decoded = SessionStore().decode(data)
            current = hashes.get(str(decoded.get(SESSION_KEY)))
            if current and constant_time_compare(decoded.get(HASH_SESSION_KEY, ""), current):
                live.add(key)
    return {int(pk) for pk in hashes}, alive, live


def profile_get(*, user: User) -> Profile:
    """The user's email settings (the defaults if they never changed them)."""
    return Profile.objects.filter(user=user).first() or Profile(user=user)

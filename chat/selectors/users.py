"""Reading users, and the credentials open sockets hold."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.utils import timezone

from chat.models import ApiToken, Profile


async def username_taken(*, name: str) -> bool:
    """Whether a user has this username, in any case (active or not)."""
    return await get_user_model().objects.filter(username__iexact=name).aexists()


async def credentials_valid(
    *, users: set[int], tokens: set[int], sessions: set[str]
) -> tuple[set[int], set[int], set[str]]:
    """Which of these users are active, tokens exist and sessions are unexpired:
    what open sockets were authenticated with. One query for each kind asked."""
    active: set[int] = set()
    alive: set[int] = set()
    live: set[str] = set()
    if users:
        accounts = get_user_model().objects.filter(pk__in=users, is_active=True)
        active = {pk async for pk in accounts.values_list("pk", flat=True)}
    if tokens:
        alive = {
            pk async for pk in ApiToken.objects.filter(pk__in=tokens).values_list("pk", flat=True)
        }
    if sessions:
        unexpired = Session.objects.filter(session_key__in=sessions, expire_date__gt=timezone.now())
        live = {key async for key in unexpired.values_list("session_key", flat=True)}
    return active, alive, live


def profile_get(*, user: User) -> Profile:
    """The user's email settings (the defaults if they never changed them)."""
    return Profile.objects.filter(user=user).first() or Profile(user=user)

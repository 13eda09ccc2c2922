"""Reading API tokens."""

from django.contrib.auth.models import AbstractBaseUser

from chat import protocol
from chat.models import ApiToken


async def token_get(*, key_hash: str) -> ApiToken | None:
    """The API token with this hash, with its user, if that user is active."""
    return (
        await ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash, user__is_active=True)
        .afirst()
    )


async def tokens_list(*, user: AbstractBaseUser) -> list[protocol.TokenOut]:
    """The user's API tokens, newest first (their secrets are not kept)."""
    tokens = ApiToken.objects.filter(user=user).order_by("-created", "-pk")
    return [
        protocol.TokenOut(id=t.pk, name=t.name, prefix=t.prefix, created=t.created)
        async for t in tokens
    ]

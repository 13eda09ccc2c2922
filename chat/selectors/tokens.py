"""Reading API tokens."""

import hashlib

from django.contrib.auth.models import User

from chat import protocol
from chat.models import ApiToken


def token_hash(secret: str) -> str:
    """The stored form of a token. Tokens are high-entropy, so a fast hash is enough."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


async def token_get(*, secret: str) -> ApiToken | None:
    """The API token with this secret, with its user, if that user is active."""
    return (
        await ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(secret), user__is_active=True)
        .afirst()
    )


async def tokens_list(*, user: User) -> list[protocol.TokenOut]:
    """The user's API tokens, newest first (their secrets are not kept)."""
    tokens = ApiToken.objects.filter(user=user).order_by("-created", "-pk")
    return [
        protocol.TokenOut(id=t.pk, name=t.name, prefix=t.prefix, created=t.created)
        async for t in tokens
    ]

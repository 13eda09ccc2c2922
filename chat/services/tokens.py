"""API tokens for non-browser clients."""

from django.contrib.auth.models import AbstractBaseUser

from chat.auth import token_generate, token_hash
from chat.models import ApiToken


def token_create(*, user: AbstractBaseUser, name: str = "") -> str:
    """Create a token for the user and return its secret, which is not stored."""
    raw = token_generate()
    ApiToken.objects.create(user=user, name=name, key_hash=token_hash(raw), prefix=raw[:12])
    return raw

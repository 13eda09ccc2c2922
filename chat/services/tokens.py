"""API tokens for non-browser clients: created, listed (selectors) and revoked."""

import secrets

from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from chat import protocol
from chat.models import ApiToken
from chat.selectors.tokens import token_hash
from chat.services.broadcast import credentials_revoked_broadcast

TOKEN_PREFIX = "chat_"


async def token_create(*, user: User, name: str = "") -> protocol.TokenCreated:
    """Create a token for the user. The reply holds its secret, which is not stored."""
    return await _token_create(user=user, name=name)


@database_sync_to_async
def _token_create(*, user: User, name: str) -> protocol.TokenCreated:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=token_hash(raw), prefix=raw[:12])
    return protocol.TokenCreated(
        id=token.pk, name=token.name, prefix=token.prefix, created=token.created, token=raw
    )


async def token_revoke(*, user: User, token_id: int) -> None:
    """Delete one of the user's tokens, and close the sockets opened with it.

    Sockets close at once through the channel layer, or at the next sweep
    (CHAT_SWEEP_SECONDS) if that message is lost.
    """
    deleted, _ = await ApiToken.objects.filter(user=user, pk=token_id).adelete()
    if not deleted:
        raise protocol.ChatError(protocol.ErrorCode.NOT_FOUND, f"no token {token_id}")
    await credentials_revoked_broadcast(
        user_id=user.pk, token_id=token_id, reason="the API token of this connection was revoked"
    )

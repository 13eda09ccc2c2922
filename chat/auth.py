"""Who makes a plain HTTP request: its bearer token's user, its session's
user, or a guest if guests are allowed (the socket's handshake:
chat/realtime/auth.py)."""

from django.conf import settings
from django.http import HttpRequest

from chat import protocol
from chat.actor import Actor
from chat.models import ApiToken
from chat.selectors.tokens import token_get


async def actor_from_request(request: HttpRequest) -> Actor:
    """Who makes a plain HTTP request: its bearer token's user (a bad token is
    refused), its session's user, or a guest if guests are allowed."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        token = await token_authenticate(authorization)
        if token is None:
            raise protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, "a bad or revoked token")
        return Actor(name=token.user.get_username(), user=token.user)
    user = await request.auser()
    if user.is_authenticated:
        return Actor(name=user.get_username(), user=user)
    if not settings.CHAT_ALLOW_GUESTS:
        raise protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, "sign in or send a bearer token")
    return Actor(name="guest")


async def token_authenticate(authorization: str) -> ApiToken | None:
    """The API token named by an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    return await token_get(secret=raw.strip())

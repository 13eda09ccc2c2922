"""Who is on the other end of a socket: the handshake's authentication.

A WebSocket handshake is authenticated by, in order:
1. `Authorization: Bearer <token>`: an API token (see `chattoken`). A bad token is refused.
2. Django's session cookie, for browsers.
3. Nothing: a guest, if `CHAT_ALLOW_GUESTS` is on (checked by the consumer).

Origins: a handshake that carries an `Origin` must come from an allowed
origin: one of CHAT_ALLOWED_ORIGINS, or by default the very origin the site is
served from (the scheme, the `Host` header's name and port, that name under
ALLOWED_HOSTS; with HTTPS=1 the proxy's X-Forwarded-Proto gives the scheme).
Browsers always send one. A handshake without one (or with `null`, from a
sandboxed page) is refused only when the session cookie authenticated it, the
case cross-site hijacking abuses.
"""

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host

from chat import protocol
from chat.actor import Actor
from chat.auth import token_authenticate
from chat.realtime import drain
from chat.realtime.relay import user_subscribe
from chat.realtime.sockets import Socket
from chat.selectors.users import username_taken
from chat.services.limits import socket_admit, socket_holder


def actor_from_scope(scope: dict[str, Any]) -> Actor:
    """The Actor for an accepted handshake, or a ChatError saying why it may not go on."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Actor(name=user.get_username(), user=user)
    if not settings.CHAT_ALLOW_GUESTS:
        raise protocol.ChatError(
            protocol.ErrorCode.UNAUTHORIZED,
            "sign in or send a bearer token: guests are off",
            close=protocol.CloseCode.UNAUTHORIZED,
        )
    names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name")
    if names:
        return Actor(name=protocol.parse_guest_name(names[0]))
    return Actor(name=f"guest-{secrets.token_hex(3)}")


async def actor_admit(socket: Socket) -> Actor:
    """Who is on a socket just accepted, if it may go on (this process is not
    stopping, a guest's name is theirs to take, the user or address has a
    socket to spare), counted and subscribed to its user's events; else a
    ChatError with its close code."""
    if drain.draining():
        raise protocol.ChatError(
            protocol.ErrorCode.UNAVAILABLE,
            "this server is restarting: reconnect",
            close=protocol.CloseCode.SERVICE_RESTART,
        )
    actor = actor_from_scope(socket.scope)
    if actor.guest:
        await guest_name_check(actor.name)
    if holder := socket_holder(actor=actor, address=socket.address):
        await socket_admit(holder=holder, channel=socket.channel_name)
        socket.holder = holder
    if actor.user_id is not None:
        await user_subscribe(user_id=actor.user_id, socket=socket)
    return actor


async def guest_name_check(name: str) -> None:
    """Refuse a guest name that is a registered user's, in any case: a guest
    may not pass for them."""
    if await username_taken(name=name):
        raise protocol.ChatError(
            protocol.ErrorCode.BAD_REQUEST,
            f"the name {name!r} belongs to a registered user: choose another, or sign in",
            close=protocol.CloseCode.BAD_REQUEST,
        )


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the handshake's Origin may open a socket with the credentials it used."""
    origin = _header(scope, b"origin")
    if origin is None or origin == "null":
        return scope.get("auth") != "session"
    origin = origin.lower().rstrip("/")
    if settings.CHAT_ALLOWED_ORIGINS:
        return origin in settings.CHAT_ALLOWED_ORIGINS
    site = site_origin(scope)
    return site is not None and _origin_normal(origin) == site


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_normal(origin: str) -> str | None:
    """scheme://host:port, with the scheme's default port made explicit."""
    try:
        parts = urlsplit(origin)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def site_origin(scope: dict[str, Any]) -> str | None:
    """The origin a handshake's site is served from, if its Host is allowed:
    the scheme it came over (https behind a TLS proxy under HTTPS=1), and the
    Host header's name and port."""
    host = _header(scope, b"host")
    if host is None:
        return None
    name, _ = split_domain_port(host)
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    if not name or not validate_host(name, hosts):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    if settings.HTTPS and _header(scope, b"x-forwarded-proto") == "https":
        scheme = "https"
    return _origin_normal(f"{scheme}://{host.lower()}")


def _session_key(scope: dict[str, Any]) -> str | None:
    """The session cookie's value, if the handshake carries one."""
    cookies = _header(scope, b"cookie")
    if cookies is None:
        return None
    return parse_cookie(cookies).get(settings.SESSION_COOKIE_NAME) or None


class ChatAuthMiddleware(BaseMiddleware):
    """Sets scope["user"], scope["auth"] ("token", "session" or "none") and, for
    a token, scope["token_id"], and for a session cookie scope["session"];
    refuses handshakes with a bad token or a disallowed origin.

    It reads the session cookie itself rather than through Channels'
    session middleware, which copies the scope twice and makes a session
    object for every socket, guests' included: a few KiB per open socket.
    The scope is daphne's own for the connection, and is added to in place."""

    async def __call__(self, scope, receive, send):
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            token = await token_authenticate(authorization)
            if token is None:
                return await WebsocketDenier()(scope, receive, send)
            scope["user"], scope["auth"], scope["token_id"] = token.user, "token", token.pk
        elif (key := _session_key(scope)) is not None:
            scope["session"] = SessionStore(session_key=key)
            scope["user"] = user = await get_user(scope)
            scope["auth"] = "session" if user.is_authenticated else "none"
        else:
            scope["user"], scope["auth"] = AnonymousUser(), "none"
        if not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)

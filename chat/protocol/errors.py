"""Client faults: the error codes and close codes of the wire, the error that
carries one from anywhere to the transport (`ChatError`), and how a
validation failure reads as one."""

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from typing import Any

from chat.protocol.types import SLUG_PATTERN, USERNAME_PATTERN


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    # HTTP API only: the thing to create exists already (a room's slug).
    CONFLICT = "conflict"
    # The server cannot do this now (the channel layer is away): retry after `retry_after`.
    UNAVAILABLE = "unavailable"
    # The server is further behind than it lets a send wait: resend after `retry_after`.
    OVERLOADED = "overloaded"
    # A fault on the server's side, never the client's: logged with a traceback.
    INTERNAL_ERROR = "internal_error"


class CloseCode(IntEnum):
    NORMAL = 1000
    # This server process is stopping (a restart or deploy): reconnect now, with
    # `since`; the proxy sends the new connection to another process.
    SERVICE_RESTART = 1012
    # The server cannot serve the socket now (the channel layer is away): reconnect later.
    TRY_AGAIN_LATER = 1013
    # The connection may not go on: no user and guests are not allowed, or the
    # API token it was opened with has been revoked.
    UNAUTHORIZED = 4401
    BAD_REQUEST = 4400
    # The client stopped reading and its backlog passed CHAT_MAX_OUTBOUND_BYTES:
    # reconnect and catch up with `since`.
    TOO_SLOW = 4008
    # The user has CHAT_MAX_SOCKETS_PER_USER connections open already (a guest:
    # guests at its address have CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS).
    TOO_MANY_CONNECTIONS = 4429


class ChatError(Exception):
    """A client fault. The consumer turns it into an `error` frame and carries
    on, or, for a connection that may not go on, closes it with `close`."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        ref: str | None = None,
        retry_after: float | None = None,
        close: "CloseCode | None" = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.ref = ref
        self.retry_after = retry_after
        self.close = close


_TOO_LARGE_ERRORS = {"string_too_long", "too_long"}

# What each pattern allows, said to whoever sent a value it refuses.
_PATTERN_HINTS = {
    SLUG_PATTERN: "not allowed: use 1-50 of a-z, 0-9, '_' and '-', starting with a letter or digit",
    USERNAME_PATTERN: "not a username: use letters, digits and '@', '.', '+', '-', '_'",
}


def _field_error(
    error: Mapping[str, Any], loc: tuple, *, default: str, ref: str | None = None
) -> ChatError:
    field = ".".join(str(part) for part in loc) or default
    code = ErrorCode.TOO_LARGE if error["type"] in _TOO_LARGE_ERRORS else ErrorCode.BAD_REQUEST
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERN_HINTS.get(error.get("ctx", {}).get("pattern"), "not allowed")
    else:
        message = error["msg"].removeprefix("Value error, ")
    return ChatError(code, f"{field}: {message}", ref=ref)


HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.UNAVAILABLE: 503,  # last: a bare 503 from elsewhere reads as unavailable
}


# django-ninja's names for where a request's input came from, not field names.
_REQUEST_PARTS = {"body", "query", "path", "payload", "cursor"}


def error_from_fields(errors: list[dict]) -> ChatError:
    """A model's validation errors (pydantic's list) as one ChatError naming the field."""
    return _field_error(errors[0], tuple(errors[0]["loc"]), default="request")


def error_from_validation(errors: list[dict]) -> ChatError:
    """A request's validation errors (django-ninja's list) as one ChatError."""
    first = errors[0]
    loc = tuple(part for part in first["loc"] if part not in _REQUEST_PARTS)
    return _field_error(first, loc, default="request")

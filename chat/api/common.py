"""What every endpoint of the HTTP API shares: how a request authenticates
(a bearer token, or the session cookie with Django's CSRF token), the error
shape (the `error` frame's: `{"code", "detail", "retry_after"}`), and the
caller as an actor."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.responses import codes_4xx
from ninja.security import HttpBearer, SessionAuth

from chat import protocol
from chat.actor import Actor
from chat.selectors import tokens as token_selectors


class BearerToken(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str):
        api_token = await token_selectors.token_get(secret=token)
        return None if api_token is None else api_token.user


class SessionCookie(SessionAuth):
    """The browser's session; Django's CSRF check applies once a session signs in."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None  # so a request with no credentials is 401, not a CSRF failure
        return super().__call__(request)


Errors = {codes_4xx: protocol.ApiError}
_CODE_OF_STATUS = {status: code for code, status in protocol.HTTP_STATUS.items()}


class AuthedRequest(HttpRequest):
    """A request past the API's auth: `auth` is the caller (for type checking)."""

    auth: User


def actor(request: AuthedRequest) -> Actor:
    """The caller, as the services take them."""
    return Actor(name=request.auth.get_username(), user=request.auth)


def _error(error: protocol.ChatError) -> HttpResponse:
    body = protocol.ApiError(code=error.code, detail=error.detail, retry_after=error.retry_after)
    return HttpResponse(
        body.model_dump_json(),
        status=protocol.HTTP_STATUS[error.code],
        content_type="application/json",
    )


def chat_error(request: HttpRequest, exc: protocol.ChatError) -> HttpResponse:
    return _error(exc)


def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(protocol.error_from_validation(exc.errors))


def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Raised by django-ninja itself: a failed CSRF check, or a body that is not JSON.
    code = _CODE_OF_STATUS.get(exc.status_code, protocol.ErrorCode.BAD_REQUEST)
    return _error(protocol.ChatError(code, str(exc)))


def unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = "send Authorization: Bearer <token>, or sign in (with the CSRF token)"
    return _error(protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, detail))


# Each error the API answers, and the handler that shapes it as `ApiError`.
ERROR_HANDLERS: dict[type[Exception], Callable[[HttpRequest, Any], HttpResponse]] = {
    protocol.ChatError: chat_error,
    ValidationError: validation_error,
    HttpError: http_error,
    AuthenticationError: unauthorized,
}

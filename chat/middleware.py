"""The Content-Security-Policy of every response that sets none of its own
(files served set a stricter one: chat/files.py): scripts, styles, images and
connections from this origin only, no inline script, no plugins, no base
rewriting, forms posting here only, and never framed."""

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # data: and blob: for images the page makes itself (a pasted image's preview).
        "img-src 'self' data: blob:",
        # 'self' covers the page's own ws:// and wss:// origin.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _with_policy(response: HttpResponseBase) -> HttpResponseBase:
    if "Content-Security-Policy" not in response:
        response["Content-Security-Policy"] = POLICY
    return response


@sync_and_async_middleware
def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
):
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            return _with_policy(await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponseBase:  # type: ignore[misc]
            return _with_policy(get_response(request))  # type: ignore[arg-type]

    return middleware

"""The HTTP API under /api/v1/, on django-ninja: each view validates its input
(with the schemas in chat/protocol/) and calls one service or selector.

Requests authenticate with `Authorization: Bearer <token>`, or with the
session cookie and Django's CSRF token (for the browser). Errors have the
shape of the WebSocket `error` frame: `{"code", "detail", "retry_after"}`
(chat/api/common.py). The endpoints are in `rooms`, `messages` and `account`.
"""

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI
from ninja.operation import Operation

from chat import spec
from chat.api import account, messages, rooms
from chat.api.common import ERROR_HANDLERS, BearerToken, SessionCookie


class ChatApi(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # As they were named when the API was one module: clients generated
        # from the OpenAPI document keep their method names.
        return f"chat_api_{operation.view_func.__name__}"


api = ChatApi(
    title="Chat HTTP API",
    version="1",
    description="Rooms, history, messages, read markers and API tokens. "
    "The WebSocket protocol is described by /api/v1/asyncapi.json.",
    auth=[BearerToken(), SessionCookie()],
    urls_namespace="api",
)
for error, handler in ERROR_HANDLERS.items():
    api.add_exception_handler(error, handler)
for module in (rooms, messages, account):
    api.add_router("", module.router)


@api.get("/asyncapi.json", auth=None, include_in_schema=False)
def asyncapi(request: HttpRequest) -> JsonResponse:
    """The AsyncAPI 3.0 document of the WebSocket protocol."""
    return JsonResponse(spec.asyncapi_document())

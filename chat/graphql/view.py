"""/graphql/ over HTTP: queries and mutations by POST, GraphiQL on GET.

A request authenticates as the REST API does: `Authorization: Bearer
<token>`, or the session cookie with Django's CSRF token on a POST (checked
here, since a token's request carries no cookie to check); with neither, only
the schema itself (introspection) answers. Subscriptions are served by the
socket at the same path (chat/realtime/graphql.py)."""

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import AsyncGraphQLView

from chat import protocol
from chat.actor import Actor
from chat.auth import actor_from_request
from chat.graphql.schema import Context, schema
from chat.middleware import POLICY


class GraphQLView(AsyncGraphQLView):
    # GET shows GraphiQL; queries come by POST, which the CSRF check covers.
    allow_queries_via_get = False

    async def get_context(  # type: ignore[override]
        self, request: HttpRequest, response: HttpResponse
    ) -> Context:
        return Context(
            actor=getattr(request, "chat_actor", None), address=request.META.get("REMOTE_ADDR")
        )

    async def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        # The page's template reads the session and the user: the ORM, in a thread.
        page = await sync_to_async(render)(request, "chat/graphiql.html")
        # GraphiQL's stylesheet carries its fonts as data: URLs.
        page["Content-Security-Policy"] = f"{POLICY}; font-src 'self' data:"
        return page


_view = csrf_exempt(GraphQLView.as_view(schema=schema))


def _error(code: protocol.ErrorCode, detail: str) -> JsonResponse:
    body = {"data": None, "errors": [{"message": detail, "extensions": {"code": code.value}}]}
    return JsonResponse(body, status=protocol.HTTP_STATUS[code])


def _csrf_refused(request: HttpRequest) -> bool:
    checked = CsrfViewMiddleware(lambda r: HttpResponse())
    return checked.process_view(request, lambda r: HttpResponse(), (), {}) is not None


@csrf_exempt
async def graphql(request: HttpRequest) -> HttpResponseBase:
    actor: Actor | None = None
    has_token = "Authorization" in request.headers
    if has_token or (await request.auser()).is_authenticated:
        try:
            actor = await actor_from_request(request)
        except protocol.ChatError as error:
            return _error(error.code, error.detail)
        if not has_token and request.method == "POST" and _csrf_refused(request):
            return _error(protocol.ErrorCode.FORBIDDEN, "CSRF check failed: send X-CSRFToken")
    try:
        request.body  # noqa: B018 (read now: past DATA_UPLOAD_MAX_MEMORY_SIZE it raises)
    except RequestDataTooBig:
        return _error(protocol.ErrorCode.TOO_LARGE, "the request body is too large")
    request.chat_actor = actor  # type: ignore[attr-defined]
    return await _view(request)  # type: ignore[misc]

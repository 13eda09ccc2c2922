"""WebSocket URL routes: the chat protocol, and GraphQL. The room in the
second route is validated like any frame."""

import functools
from typing import Any

from django.urls import re_path

from chat.realtime.consumer import ChatConsumer


@functools.cache
def _graphql_consumer() -> Any:
    # GraphQL's schema takes most of a second to import and build: made on
    # first use, not at every server start.
    from chat.realtime.graphql import GraphQLConsumer

    return GraphQLConsumer.as_asgi()


async def graphql_socket(scope: dict, receive: Any, send: Any) -> None:
    await _graphql_consumer()(scope, receive, send)


websocket_urlpatterns = [
    re_path(r"^ws/chat/$", ChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<room>[^/]+)/$", ChatConsumer.as_asgi()),
    # GraphQL's subscriptions (graphql-transport-ws); its HTTP half is chat/graphql/view.py.
    re_path(r"^graphql/$", graphql_socket),  # type: ignore[arg-type]
]

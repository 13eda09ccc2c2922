"""WebSocket URL routes: the chat protocol, and GraphQL. The room in the
second route is validated like any frame."""

from django.urls import re_path

from chat.realtime.consumer import ChatConsumer
from chat.realtime.graphql import GraphQLConsumer

websocket_urlpatterns = [
    re_path(r"^ws/chat/$", ChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<room>[^/]+)/$", ChatConsumer.as_asgi()),
    # GraphQL's subscriptions (graphql-transport-ws); its HTTP half is chat/graphql/view.py.
    re_path(r"^graphql/$", GraphQLConsumer.as_asgi()),
]

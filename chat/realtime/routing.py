"""WebSocket URL routes. The room in the second route is validated like any frame."""

from django.urls import re_path

from chat.realtime.consumer import ChatConsumer

websocket_urlpatterns = [
    re_path(r"^ws/chat/$", ChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<room>[^/]+)/$", ChatConsumer.as_asgi()),
]

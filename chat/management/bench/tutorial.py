"""The Channels tutorial's chat server, as chatbench's baseline
(`chatbench --server tutorial`): its part 3, the asynchronous consumer on
channels-redis' RedisChannelLayer, as the tutorial writes it. Each socket is
in its room's group; each message is one `group_send`, and each member's
consumer sends it on. No history, acks, seq or access rules: the plain stack.

    daphne chat.management.bench.tutorial:application
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_http = get_asgi_application()  # /healthz, for chatbench to wait on

# Imported after Django is set up.
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

# The tutorial's layer: channels_redis.core, beside the app's own.
settings.CHANNEL_LAYERS = {
    **settings.CHANNEL_LAYERS,
    "tutorial": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"{settings.CHANNEL_LAYER_PREFIX}-t"},
    },
}


class ChatConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = "tutorial"

    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data):
        text_data_json = json.loads(text_data)
        message = text_data_json["message"]
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event):
        message = event["message"]
        await self.send(text_data=json.dumps({"message": message}))


application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": URLRouter(
            [re_path(r"^ws/chat/(?P<room_name>[\w-]+)/$", ChatConsumer.as_asgi())]
        ),
    }
)

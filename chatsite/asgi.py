"""The ASGI application: Django for HTTP, the chat consumer for WebSockets.
Background work is Celery's (chatsite/celery.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_http = get_asgi_application()

# Imported after Django is set up: these load models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from chat.realtime import server  # noqa: E402
from chat.realtime.auth import ChatAuthMiddleware  # noqa: E402
from chat.realtime.outlet import outlet_scope  # noqa: E402
from chat.realtime.routing import websocket_urlpatterns  # noqa: E402

server.daphne_mend()

application = ProtocolTypeRouter(
    {
        # Under `make run` (DEBUG) daphne serves /static/ itself; behind a
        # proxy, the proxy serves the collected files.
        "http": ASGIStaticFilesHandler(django_http) if settings.SERVE_STATIC else django_http,
        "websocket": outlet_scope(ChatAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

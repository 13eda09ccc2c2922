"""HTML pages and the health check. Views read through selectors and never write."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from chat import protocol
from chat.selectors import rooms_visible


async def index(request: HttpRequest) -> HttpResponse:
    """The chat page: who you are, the rooms you can open, and the room view."""
    user = await request.auser()
    rooms = await rooms_visible(user=user)
    existing = {room.slug for room in rooms}
    context = {
        "user": user,
        "allow_guests": settings.CHAT_ALLOW_GUESTS,
        "rooms": rooms,
        "default_rooms": [slug for slug in settings.CHAT_DEFAULT_ROOMS if slug not in existing],
        "max_body_chars": protocol.MAX_BODY_CHARS,
        "slug_pattern": protocol.SLUG_PATTERN.strip("^$"),
        "guest_pattern": protocol.GUEST_NAME_PATTERN.strip("^$"),
    }
    return render(request, "chat/index.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    """200 with {"status": "ok"} when the database answers, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks = {"database": "ok"}
    except Exception as exc:
        checks = {"database": f"error: {type(exc).__name__}"}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )

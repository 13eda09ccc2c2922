"""Prometheus metrics of this process, served at /metrics.

Each daphne process is one replica with its own metrics: Prometheus scrapes
every replica (docs/architecture.md), so no multiprocess mode is needed.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import Counter, Gauge, Histogram

SOCKETS = Gauge("chat_sockets_open", "Open chat sockets in this process")
JOINS = Counter("chat_joins_total", "Room joins", ["room"])
RESUMES = Counter("chat_resumes_total", "Joins with `since`: clients resuming after a reconnect")
FRAMES_IN = Counter(
    "chat_frames_in_total", "Frames received, by type (`invalid` when unparseable)", ["type"]
)
FRAMES_OUT = Counter("chat_frames_out_total", "Frames sent, by type", ["type"])
MESSAGES_STORED = Counter(
    "chat_messages_stored_total", "Stream entries stored: messages, edits and deletes"
)
BROADCAST_LATENCY = Histogram(
    "chat_broadcast_latency_seconds",
    "From a message's commit to its send on a socket, per socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SLOW_CLIENTS = Counter(
    "chat_slow_clients_total", "Sockets closed (4008) because the client stopped reading"
)
PAGES = Counter(
    "chat_join_pages_total", "Join pages, by where they were read: cache or database", ["source"]
)
OVERLOADED = Counter(
    "chat_sends_overloaded_total", "Sends refused as `overloaded`: the writer or loop was behind"
)
LAYER_FAILURES = Counter(
    "chat_layer_failures_total", "Channel-layer (Redis) operations that failed", ["operation"]
)


_ROOM_LABELS_MAX = 1000
_room_labels: set[str] = set()


def room_label(slug: str) -> str:
    """The room, as a label: the first 1,000 rooms seen, then "other", so a
    flood of new rooms cannot grow the metrics without bound."""
    if slug in _room_labels or len(_room_labels) < _ROOM_LABELS_MAX:
        _room_labels.add(slug)
        return slug
    return "other"


def metrics_allowed(request: HttpRequest) -> bool:
    """From a private or loopback address (a scraper inside the deployment), or
    with `Authorization: Bearer <CHAT_METRICS_TOKEN>`."""
    token = settings.CHAT_METRICS_TOKEN
    authorization = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return address.is_private or address.is_loopback

"""Prometheus metrics of this process, served at /metrics.

Each daphne process is one replica with its own metrics: Prometheus scrapes
every replica (docs/architecture.md), so no multiprocess mode is needed.
Celery's workers are not scraped: they count their tasks' outcomes in a hash
on the broker (`task_count`), which every replica reports, with the queue's
depth, as read when scraped.
"""

import hmac
import ipaddress
import logging
from collections import Counter as Tally
from collections.abc import Iterator

import redis
from django.conf import settings
from django.http import HttpRequest
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

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
SLOW_BODIES = Counter(
    "chat_slow_bodies_total", "HTTP connections closed (408) because a request body came too slowly"
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


# The broker's hash of task outcomes, "<task> <outcome>" -> count; and the queue.
TASKS_KEY = "chat:tasks"
QUEUE = "celery"
_inline_tasks: Tally[str] = Tally()  # without a broker, tasks run (and are counted) here


def _broker() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def task_count(*, task: str, outcome: str) -> None:
    """Count a task's outcome (succeeded, failed, retried) where /metrics reads it."""
    broker = _broker()
    if broker is None:
        _inline_tasks[f"{task} {outcome}"] += 1
        return
    try:
        with broker:
            broker.hincrby(TASKS_KEY, f"{task} {outcome}", 1)
    except redis.RedisError as exc:
        logger.warning("task metrics not counted: %s", exc)


class _TaskCollector:
    """chat_tasks_total and chat_task_queue_depth, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        counts: Tally[str] = Tally()
        depth: int | None = None
        if (broker := _broker()) is None:
            counts.update(_inline_tasks)
        else:
            try:
                with broker:
                    stored: dict[bytes, bytes] = broker.hgetall(TASKS_KEY)  # type: ignore[assignment]
                    for field, value in stored.items():
                        counts[field.decode()] += int(value)
                    depth = int(broker.llen(QUEUE))
            except redis.RedisError as exc:
                logger.warning("task metrics unavailable: %s", exc)
        tasks = CounterMetricFamily(
            "chat_tasks", "Background tasks run, by task and outcome", labels=["task", "outcome"]
        )
        for name, count in sorted(counts.items()):
            tasks.add_metric(name.split(" ", 1), count)
        yield tasks
        if depth is not None:
            yield GaugeMetricFamily(
                "chat_task_queue_depth", "Tasks waiting in the broker's queue", value=depth
            )


REGISTRY.register(_TaskCollector())

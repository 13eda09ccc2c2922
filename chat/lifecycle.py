"""The server process's life: health, readiness and a graceful stop.

On SIGTERM (a rolling restart, `docker compose stop`), a daphne process
drains before it exits: it stops being ready (/readyz answers 503, so the
proxy sends new clients elsewhere), refuses new sockets, closes every open
socket with 1012 "service restart", waits up to CHAT_DRAIN_SECONDS for them
to go, then lets daphne stop. Clients reconnect to another replica and
recover what they missed with `since`.
"""

import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

if TYPE_CHECKING:
    from chat.consumers import ChatConsumer

logger = logging.getLogger(__name__)

_draining = False
_installed: set[asyncio.AbstractEventLoop] = set()


def draining() -> bool:
    """True once this process has been asked to stop."""
    return _draining


def drain_install(loop: asyncio.AbstractEventLoop) -> None:
    """Drain on SIGTERM, under daphne (whose reactor otherwise stops at once,
    dropping every socket without a close code). Once per event loop."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if loop in _installed or reactor is None or not reactor.running:
        return
    _installed.add(loop)
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(_drain(reactor)))


async def _drain(reactor) -> None:
    global _draining
    if _draining:  # a second SIGTERM: stop now
        reactor.stop()
        return
    _draining = True
    from chat.delivery import sockets_open

    sockets: list[ChatConsumer] = sockets_open()
    logger.info("SIGTERM: closing %d sockets with 1012, then stopping", len(sockets))
    try:
        await asyncio.gather(*(socket.restart() for socket in sockets), return_exceptions=True)
        closed = asyncio.gather(*(socket.closed.wait() for socket in sockets))
        await asyncio.wait_for(closed, timeout=settings.CHAT_DRAIN_SECONDS)
    except TimeoutError:
        logger.warning(
            "stopping with sockets still closing after %s s", settings.CHAT_DRAIN_SECONDS
        )
    finally:
        reactor.stop()


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def health_checks() -> dict[str, str]:
    """Each dependency's state: "ok", "error: <what>", or "not configured" (Redis
    is optional: without REDIS_URL the process uses the in-memory layer)."""
    checks = {}
    try:
        await sync_to_async(_database_check)()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if not settings.REDIS_URL:
        checks["redis"] = "not configured"
    else:
        client = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            await client.ping()
            checks["redis"] = "ok"
        except (redis.RedisError, OSError) as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        finally:
            await client.aclose()
    return checks

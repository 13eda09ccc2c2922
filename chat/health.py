"""Health: the state of the process's dependencies, for /healthz."""

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection


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

"""Background jobs, run by `manage.py runworker chat-jobs` off the socket path.

Web processes enqueue periodic jobs from their sweep (`jobs_schedule`); the
worker consumes them. Jobs are idempotent, so several replicas enqueueing the
same one, or a lost one, does no harm: the next period runs it again.
"""

import logging
import time
from datetime import timedelta

from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from chat.services.broadcast import LAYER_ERRORS
from chat.services.messages import messages_expire

logger = logging.getLogger(__name__)

JOBS_CHANNEL = "chat-jobs"
RETENTION_PERIOD = 3600.0  # seconds between retention runs
_last_run: dict[str, float] = {}


async def jobs_schedule() -> None:
    """Enqueue the periodic jobs that are due in this process."""
    now = time.monotonic()
    if settings.CHAT_RETENTION_DAYS and now - _last_run.get("retention", -RETENTION_PERIOD) >= (
        RETENTION_PERIOD
    ):
        _last_run["retention"] = now
        try:
            await get_channel_layer().send(JOBS_CHANNEL, {"type": "retention.prune"})
        except LAYER_ERRORS as exc:
            logger.warning("retention job not enqueued: channel layer unavailable (%s)", exc)


class JobsConsumer(AsyncConsumer):
    """The worker's consumer: one handler per job type."""

    async def retention_prune(self, message: dict) -> None:
        days = settings.CHAT_RETENTION_DAYS
        if days:
            erased = await messages_expire(older_than=timedelta(days=days))
            logger.info("retention: erased the text of %d entries older than %d days", erased, days)

"""Background jobs, run by `manage.py runworker chat-jobs` off the socket path.

Web processes enqueue periodic jobs from their sweep (`jobs_schedule`), and a
link preview for each message with a URL (`message_send`); the worker
consumes them. Jobs are idempotent, so several replicas enqueueing the same
one, or a repeated one, does no harm. With the in-memory layer (`make run`)
no worker can read a process's jobs, so each process runs its own
(`jobs_inline_start`).
"""

import asyncio
import logging
import time
import weakref
from datetime import timedelta
from typing import Literal

from channels.consumer import AsyncConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.worker import Worker
from django.conf import settings

from chat.events import PeriodicJob, PreviewFetch
from chat.services.attachments import attachments_prune
from chat.services.broadcast import JOBS_CHANNEL, job_enqueue
from chat.services.messages import messages_expire
from chat.services.previews import preview_attach

logger = logging.getLogger(__name__)

# Link previews fetched at once by one worker; more wait their turn.
PREVIEW_CONCURRENCY = 10
PERIOD = 3600.0  # seconds between runs of each periodic job
_last_run: dict[str, float] = {}


async def jobs_schedule() -> None:
    """Enqueue the periodic jobs that are due in this process."""
    now = time.monotonic()
    due: list[Literal["attachments.prune", "retention.prune"]] = ["attachments.prune"]
    if settings.CHAT_RETENTION_DAYS:
        due.append("retention.prune")
    for job in due:
        if now - _last_run.get(job, -PERIOD) < PERIOD:
            continue
        _last_run[job] = now
        await job_enqueue(PeriodicJob(type=job))


class JobsConsumer(AsyncConsumer):
    """The worker's consumer: one handler per job type."""

    def __init__(self) -> None:
        super().__init__()
        self.previews = asyncio.Semaphore(PREVIEW_CONCURRENCY)
        self.running: set[asyncio.Task] = set()

    async def preview_fetch(self, message: PreviewFetch) -> None:
        # A task per preview: a slow page must not hold up the jobs behind it.
        task = asyncio.get_running_loop().create_task(self._preview(message))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _preview(self, message: PreviewFetch) -> None:
        async with self.previews:
            try:
                await preview_attach(room_id=message["room_id"], seq=message["seq"])
            except Exception:
                logger.exception("link preview of %s#%s failed", message["room_id"], message["seq"])

    async def retention_prune(self, message: PeriodicJob) -> None:
        days = settings.CHAT_RETENTION_DAYS
        if days:
            erased = await messages_expire(older_than=timedelta(days=days))
            logger.info("retention: erased the text of %d entries older than %d days", erased, days)

    async def attachments_prune(self, message: PeriodicJob) -> None:
        if removed := await attachments_prune():
            logger.info("removed %d uploads that no message took", removed)


_inline: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def jobs_inline_start() -> None:
    """With the in-memory layer, run this process's jobs in this process."""
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    if isinstance(layer, InMemoryChannelLayer) and loop not in _inline:
        worker = Worker(JobsConsumer.as_asgi(), channels=[JOBS_CHANNEL], channel_layer=layer)
        _inline[loop] = loop.create_task(worker.handle(), name="chat-jobs-inline")

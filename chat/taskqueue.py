"""Enqueueing the background tasks of chat/tasks.py, by name, after the
transaction commits: `task_enqueue` (sync code) and `task_enqueue_async`.
They go through Celery's current app (chatsite/celery.py, loaded with the
project), so nothing here imports the project.

Without a broker (`make run`), a task runs in the process that enqueues it:
its sync code on a thread of its own, never on the event loop or the
database thread, and its async parts (a broadcast) back on the loop, so the
in-memory channel layer reaches this process's sockets. The server process
then runs the schedule itself (`schedule_inline`).
"""

import asyncio
import functools
import importlib
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

# In-process tasks enqueued from sync code with no event loop (a management command).
_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chat-task")
_running: set[asyncio.Future] = set()


def inline() -> bool:
    """True when there is no broker: tasks run where they are enqueued."""
    return not settings.CELERY_BROKER_URL


def task_enqueue(name: str, **kwargs: Any) -> None:
    """Enqueue task `name` once the current transaction commits (at once
    outside one). A broker that is away loses it, logged: every task that
    matters is also found again by a periodic one."""
    transaction.on_commit(functools.partial(_enqueue, name, kwargs))


async def task_enqueue_async(name: str, **kwargs: Any) -> None:
    """Enqueue task `name` from async code, whose writes have committed. The
    publish runs off the event loop: a broker that is slow must not stop it."""
    if inline():
        _enqueue(name, kwargs)
    else:
        await sync_to_async(_enqueue, thread_sensitive=False)(name, kwargs)


def _enqueue(name: str, kwargs: dict[str, Any]) -> None:
    if not inline():
        try:
            current_app.send_task(name, kwargs=kwargs)
        except Exception as exc:  # kombu raises several kinds for a broker away
            logger.warning("task %s not enqueued: broker unavailable (%s)", name, exc)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _threads.submit(_run, name, kwargs)
        return
    future = loop.create_task(sync_to_async(_run, thread_sensitive=False)(name, kwargs))
    _running.add(future)
    future.add_done_callback(_running.discard)


def _run(name: str, kwargs: dict[str, Any]) -> None:
    # The tasks' module, as a worker imports it at start: by name, since it
    # imports the services that import this module.
    importlib.import_module("chat.tasks")
    try:
        result = current_app.tasks[name].apply(kwargs=kwargs)
        if result.failed():
            logger.error("task %s failed: %r", name, result.result)
    except Exception:
        logger.exception("task %s could not run", name)
    finally:
        close_old_connections()


class PeriodicSuccessFilter(logging.Filter):
    """Celery logs each task's success at INFO; for the periodic tasks
    (CELERY_BEAT_SCHEDULE), a routine success every 30 s, it is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.levelno != logging.INFO or not isinstance(args, dict):
            return True
        periodic = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
        if args.get("name") not in periodic or "succeeded" not in str(record.msg):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_schedules: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def schedule_inline() -> None:
    """Without a broker, run CELERY_BEAT_SCHEDULE in this event loop's process
    (once per loop); with one, beat does."""
    loop = asyncio.get_running_loop()
    if inline() and loop not in _schedules:
        _schedules[loop] = loop.create_task(_schedule_forever(), name="chat-schedule")


async def _schedule_forever() -> None:
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    every = {entry["task"]: float(entry["schedule"]) for entry in schedule.values()}
    due = {task: time.monotonic() + seconds for task, seconds in every.items()}
    while True:
        now = time.monotonic()
        for task, seconds in every.items():
            if due[task] <= now:
                due[task] = now + seconds
                _enqueue(task, {})
        await asyncio.sleep(max(0.05, min(due.values()) - time.monotonic()))

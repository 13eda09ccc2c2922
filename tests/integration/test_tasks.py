"""Tasks on a real `celery worker` process, with a real Redis as the broker:
duplicates, warm shutdown and the task metrics. (A worker killed mid-task:
tests/integration/test_previews.py.)"""

import asyncio
import time
import uuid

import pytest
import redis
from celery import Celery
from channels.db import database_sync_to_async
from django.test import Client

from chat.metrics import TASKS_KEY
from chat.models import Message, Room
from tests.conftest import TIMEOUT
from tests.factories import room_make
from tests.integration.conftest import age, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def broker_app(url: str) -> Celery:
    """A client of the broker, enqueueing by name as the web processes do."""
    return Celery("test-client", broker=url)


async def succeeded(broker: redis.Redis, task: str, count: int) -> None:
    """Wait until the workers have counted `count` successes of `task`."""
    field = f"{task} succeeded"
    async with asyncio.timeout(TIMEOUT * 3):
        while int(await asyncio.to_thread(broker.hget, TASKS_KEY, field) or 0) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the count is in Redis, written by another process


async def test_the_worker_sends_one_email_however_many_times_its_task_comes(
    away_bob,
    smtp,
    start_worker,
    redis_process,
    settings,
):
    alice, bob = away_bob
    await say(alice, "@bob ping")
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    start_worker(**smtp.env)
    client = broker_app(redis_process.url)
    for _ in range(3):  # a duplicated task, and two redeliveries of it
        client.send_task("chat.tasks.notify_send", kwargs={"user_id": bob.pk})
    mail = await smtp.next()
    assert (
        mail["To"] == "bob@example.com" and "@bob ping" in mail.get_body(("plain",)).get_content()
    )
    await succeeded(redis_process.client(), "chat.tasks.notify_send", 3)
    assert len(smtp.inbox) == 1

    # /metrics reports the workers' counts and the queue, read from the broker.
    settings.CELERY_BROKER_URL = redis_process.url
    text = (await asyncio.to_thread(Client().get, "/metrics")).content.decode()
    assert 'chat_tasks_total{outcome="succeeded",task="chat.tasks.notify_send"} 3.0' in text
    assert "chat_task_queue_depth 0.0" in text


async def test_sigterm_lets_a_running_task_finish(
    start_worker, redis_process, page_server, make_user
):
    worker = start_worker(CHAT_PREVIEW_ALLOW=f"127.0.0.1:{page_server.port}")

    def message():
        room = room_make(slug="den", creator=make_user("ada"))
        url = page_server.url("/hold")
        Message.objects.create(
            room=room, seq=1, author_name="ada", body=url, client_id=uuid.uuid4()
        )
        Room.objects.filter(pk=room.pk).update(last_seq=1)
        return room.pk

    room_id = await database_sync_to_async(message)()
    broker_app(redis_process.url).send_task(
        "chat.tasks.preview_attach", kwargs={"room_id": room_id, "seq": 1}
    )
    await asyncio.to_thread(page_server.arrived.get, timeout=TIMEOUT)
    assert worker.proc is not None
    worker.proc.terminate()
    deadline = time.monotonic() + TIMEOUT
    while "Warm shutdown" not in worker.log_path.read_text():
        assert time.monotonic() < deadline, worker.log_path.read_text()[-2000:]
        await asyncio.sleep(0.05)  # the worker's log is its only sign
    page_server.release.set()
    assert await asyncio.to_thread(worker.proc.wait, TIMEOUT) == 0
    assert await Message.objects.filter(kind="preview", target=1).aexists()

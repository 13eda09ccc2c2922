"""The page keeps a room whole: a lost broadcast is recovered from the gap it leaves."""

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.actor import Actor
from chat.models import Room
from chat.services.stream import message_store
from tests.conftest import WsClient

pytestmark = pytest.mark.django_db(transaction=True)


async def seqs_shown(page) -> list[int]:
    return await page.eval_on_selector_all(
        "#messages li[data-seq]", "items => items.map(li => Number(li.dataset.seq))"
    )


async def test_a_message_whose_broadcast_was_lost_appears_in_order(browser, start_server):
    # A sweep of an hour: the page must find the hole on its own.
    server = start_server(DEBUG="1", CHAT_SWEEP_SECONDS="3600")
    page = await browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server.http_url + "/")
    await page.fill("#guest-name", "ada")
    await page.click("a[data-room=lobby]")
    await page.wait_for_selector("#composer:not([hidden])")

    bo = await WsClient.open(server.ws_url + "?name=bo")
    await bo.send({"type": "join", "room": "lobby"})
    await bo.expect("joined")
    await bo.send({"type": "send", "room": "lobby", "body": "one", "client_id": str(uuid.uuid4())})
    await page.wait_for_selector("#messages li[data-seq='1']")

    room = await Room.objects.aget(slug="lobby")
    await database_sync_to_async(message_store)(
        room_id=room.pk, actor=Actor(name="bo"), body="lost on the way", client_id=uuid.uuid4()
    )
    await bo.send(
        {"type": "send", "room": "lobby", "body": "three", "client_id": str(uuid.uuid4())}
    )
    await page.wait_for_selector("#messages li[data-seq='2']", timeout=10_000)
    assert await seqs_shown(page) == [1, 2, 3]
    assert "lost on the way" in await page.inner_text("#messages li[data-seq='2']")
    assert errors == []
    await bo.close()

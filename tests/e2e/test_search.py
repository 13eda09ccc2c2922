"""Searching in the browser: results from the rooms you may read, each
opening its room at the message."""

import uuid

import pytest

from chat.actor import Actor
from chat.services.stream import message_store
from tests.e2e.conftest import shown, sign_in
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(users):
    """bob's lobby: a message about the deploy, then 100 others; his private den."""
    _, bob = users
    lobby = room_make(slug="lobby", creator=bob)
    den = room_make(slug="den", creator=bob, private=True)
    said = Actor(name="bob", user=bob)
    message_store(room_id=den.pk, actor=said, body="deploy secrets", client_id=uuid.uuid4())
    for body in ["The deploy is green", *(f"chatter {i}" for i in range(100))]:
        message_store(room_id=lobby.pk, actor=said, body=body, client_id=uuid.uuid4())


async def test_a_search_result_opens_the_room_at_the_message(browser, server, history):
    alice = await sign_in(browser, server, "alice")
    await alice.fill("#search-q", "deploy")
    await alice.press("#search-q", "Enter")
    results = alice.locator("#search-results button")
    await results.first.wait_for()
    assert await results.all_inner_texts() == ["#lobby · bob: The deploy is green"]
    await results.first.click()
    await alice.wait_for_selector("#room-title:text('lobby')")
    found = shown(alice, "The deploy is green")
    await found.and_(alice.locator(".flash")).wait_for()
    assert await found.is_visible()

    await alice.fill("#search-q", "nothing like this")
    await alice.press("#search-q", "Enter")
    await alice.locator("#search-results-empty").wait_for()
    assert await results.count() == 0
    assert alice.errors == []

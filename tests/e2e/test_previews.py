"""A link preview in the browser: it appears under the message once fetched,
and comes back with the history."""

import pytest

from tests.e2e.conftest import both_in, open_room, say, shown

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_link_preview_appears_under_its_message(browser, start_server, users, page_server):
    server = start_server(DEBUG="1", CHAT_PREVIEW_ALLOW=f"127.0.0.1:{page_server.port}")
    alice, bob = await both_in(browser, server, "lobby")
    await say(alice, f"read this: {page_server.url('/page')}")
    card = shown(bob, "read this").locator(".preview")
    await card.locator("a", has_text="The Chat Handbook").wait_for()
    assert await card.locator("p").inner_text() == "How we talk."
    assert await card.locator("a").get_attribute("href") == page_server.url("/page")
    assert await bob.locator("#messages img").count() == 0  # the page's image is not loaded

    await bob.reload()
    await open_room(bob, "lobby")
    await shown(bob, "read this").locator(".preview a", has_text="The Chat Handbook").wait_for()
    assert alice.errors == [] and bob.errors == []

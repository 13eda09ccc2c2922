"""The page's layout on a phone (360 px) and with long names, measured in
real Chromium."""

import pytest
from channels.db import database_sync_to_async

from tests.e2e.conftest import open_room, say, shown, sign_in
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = {"width": 360, "height": 740}


async def test_on_a_phone_the_rooms_are_a_drawer_and_the_messages_get_the_screen(
    browser, server, users
):
    page = await sign_in(browser, server, "alice", width=PHONE["width"])
    await page.set_viewport_size(PHONE)
    sidebar = page.locator(".sidebar")
    await sidebar.wait_for(state="hidden")
    await page.click("#rooms-toggle")  # in the room's header
    await page.wait_for_function(  # slid all the way in
        "document.querySelector('.sidebar').getBoundingClientRect().x >= 0"
    )
    box = await sidebar.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert await page.get_attribute("#rooms-toggle", "aria-expanded") == "true"
    await page.click("a[data-room=lobby]")  # picking a room shuts the drawer
    await sidebar.wait_for(state="hidden")
    await page.wait_for_selector("#room-title:text('lobby')")
    await say(page, "hello from a phone")
    await shown(page, "hello from a phone").and_(page.locator("[data-seq]")).wait_for()

    messages = await page.locator("#messages").bounding_box()
    assert messages["height"] >= 0.6 * PHONE["height"], messages
    for part in ("#composer", "#composer button[type=submit]", "#body"):
        box = await page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (part, box)
        assert box["y"] + box["height"] <= PHONE["height"], (part, box)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "nothing runs off the side"

    await page.click("#rooms-toggle")
    await sidebar.wait_for()
    await page.keyboard.press("Escape")
    await sidebar.wait_for(state="hidden")
    assert page.errors == []


async def test_a_long_room_title_takes_one_line_with_the_whole_of_it_on_hover(
    browser, server, users
):
    title = " ".join(["A very long room title"] * 10)[:200]  # the most a title may be
    await database_sync_to_async(room_make)(slug="long", title=title, creator=users[0])
    page = await sign_in(browser, server, "alice")
    link = page.locator("a[data-room=long]")
    assert await link.get_attribute("title") == title
    line = await page.locator("a[data-room=lobby]").bounding_box()
    assert (await link.bounding_box())["height"] <= line["height"] + 1, "one line"
    await open_room(page, "long")
    head = page.locator("#room-title")
    assert await head.get_attribute("title") == title
    assert (await head.bounding_box())["height"] < 40, "one line"
    assert await head.evaluate("h => h.scrollWidth > h.clientWidth"), "cut, with an ellipsis"
    assert await head.evaluate("h => getComputedStyle(h).textOverflow") == "ellipsis"

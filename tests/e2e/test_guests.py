"""A guest, as a new user meets the page: choosing a name, keeping it, changing
it, and being told what is wrong with one."""

import pytest

from chat.models import Message
from tests.e2e.conftest import TIMEOUT_MS, open_room, say

pytestmark = pytest.mark.django_db(transaction=True)


async def guest_page(browser, server, width=1100):
    context = await browser.new_context(viewport={"width": width, "height": 720})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(server.http_url + "/")
    await page.wait_for_selector("#app[data-ready]")
    return page


async def authors(page) -> list[str]:
    return await page.locator("#messages li[data-seq] .author").all_inner_texts()


async def test_the_name_is_kept_across_a_reload_shown_and_changed_by_reconnecting(browser, server):
    page = await guest_page(browser, server)
    await page.fill("#guest-name", "ada")
    await open_room(page, "lobby")
    await page.locator("#me:text-is('ada (guest)')").wait_for()
    await say(page, "hello as ada")
    await page.locator("#messages li[data-seq]", has_text="hello as ada").wait_for()

    await page.reload()  # the room (in the URL) and the name come back
    await page.locator("#me:text-is('ada (guest)')").wait_for()
    assert await page.input_value("#guest-name") == "ada"
    await page.locator("#messages li[data-seq]", has_text="hello as ada").wait_for()
    await say(page, "back as ada")
    await page.locator("#messages li[data-seq]", has_text="back as ada").wait_for()

    await page.fill("#guest-name", "grace")
    await page.press("#guest-name", "Enter")  # renaming reconnects under the new name
    await page.locator("#me:text-is('grace (guest)')").wait_for()
    await say(page, "now as grace")
    await page.locator("#messages li[data-seq]", has_text="now as grace").wait_for()
    rows = [(m.author_name, m.body) async for m in Message.objects.order_by("seq")]
    assert rows == [("ada", "hello as ada"), ("ada", "back as ada"), ("grace", "now as grace")]
    assert page.errors == []


async def test_a_room_opened_with_no_name_asks_for_one_instead_of_inventing_it(browser, server):
    page = await guest_page(browser, server)
    await page.click("a[data-room=lobby]")
    await page.locator("#guest-error:text('Choose a name')").wait_for()
    assert await page.evaluate("document.activeElement.id") == "guest-name"
    assert await page.locator("#body").is_disabled()
    assert await page.locator("#me").is_hidden(), "no socket, so no made-up name"
    await page.locator("#list-state:text('Choose a name')").wait_for()

    await page.fill("#guest-name", "ada")
    await page.press("#guest-name", "Enter")
    await page.locator("#list-state:text('No messages yet')").wait_for()
    await page.locator("#body:enabled").wait_for()
    await say(page, "first!")
    await page.locator("#messages li[data-seq]", has_text="first!").wait_for()
    assert await authors(page) == ["ada (guest)"]
    assert await Message.objects.filter(author_name__startswith="guest-").acount() == 0


async def test_a_name_the_rule_refuses_says_the_rule_and_keeps_the_composer_shut(browser, server):
    page = await guest_page(browser, server)
    await page.fill("#guest-name", "bad name!")
    await open_room(page, "lobby")
    error = page.locator("#guest-error")
    await error.locator(":scope:text('not allowed')").wait_for()
    assert "32 letters, digits, '_', '.' or '-'" in await error.inner_text()
    assert await page.inner_text("#banner") == await error.inner_text()
    assert await page.locator("#body").is_disabled()
    assert await page.get_attribute("#guest-name", "aria-invalid") is not None

    await page.fill("#guest-name", "good.name")
    await page.press("#guest-name", "Enter")
    await page.locator("#body:enabled").wait_for()
    assert await error.is_hidden() and await page.locator("#banner").is_hidden()
    await say(page, "fixed")
    await page.locator("#messages li[data-seq]", has_text="fixed").wait_for()
    assert await authors(page) == ["good.name (guest)"]


async def test_a_name_the_server_refuses_says_why_and_fixing_it_reconnects(browser, server, users):
    page = await guest_page(browser, server)
    await page.fill("#guest-name", "alice")  # a registered user's: the server refuses it
    await open_room(page, "lobby")
    await page.locator("#banner:text('The server refused this connection')").wait_for()
    banner = await page.inner_text("#banner")
    assert "the name 'alice' belongs to a registered user" in banner, banner
    await page.locator("#guest-error:text('belongs to a registered user')").wait_for()
    assert await page.locator("#body").is_disabled()
    assert await page.locator("#reconnect").is_hidden(), "retrying the same name would not help"

    await page.fill("#guest-name", "alice2")
    await page.press("#guest-name", "Enter")
    await page.locator("#banner").wait_for(state="hidden")
    await page.locator("#me:text-is('alice2 (guest)')").wait_for()
    await say(page, "hi, not alice")
    await page.locator("#messages li[data-seq]", has_text="hi, not alice").wait_for()
    assert await Message.objects.filter(author_name="alice2").acount() == 1
    assert page.errors == []


async def test_a_guest_meets_the_sign_up_hint_where_a_user_would_react_or_edit(
    browser, server, users
):
    from tests.e2e.conftest import sign_in

    page = await guest_page(browser, server)
    await page.fill("#guest-name", "ada")
    await open_room(page, "lobby")
    await say(page, "a guest's own message")
    mine = page.locator("#messages li[data-seq]", has_text="a guest's own message")
    await mine.hover()
    hint = mine.locator(".actions a.signup-hint")
    await hint.wait_for()
    assert await hint.inner_text() == "Sign up to react or edit"
    assert await hint.get_attribute("href") == "/accounts/signup/"
    assert await mine.locator("button[data-action=react], button[data-action=edit]").count() == 0
    # A signed-in user sees the buttons instead, and no hint.
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    theirs = alice.locator("#messages li[data-seq]", has_text="a guest's own message")
    await theirs.hover()
    await theirs.locator("button[data-action=react]").wait_for()
    assert await theirs.locator(".signup-hint").count() == 0
    assert page.errors == []


async def test_the_address_follows_a_newly_made_room(browser, server, users):
    from tests.e2e.conftest import sign_in

    alice = await sign_in(browser, server, "alice")
    await alice.click("#new-room summary")
    await alice.fill("#room-form [name=slug]", "planning")
    await alice.click("#room-form button[type=submit]")
    await alice.wait_for_function("location.hash === '#planning'")
    await alice.reload()
    await alice.locator("#room-title", has_text="planning").wait_for()

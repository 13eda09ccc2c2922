"""The chat page in real Chromium against a real daphne process."""

import asyncio
import uuid
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from chat.actor import Actor
from chat.models import Membership, Message, Room
from tests.conftest import ROOT, WsClient
from tests.e2e.conftest import open_room, say, shown, sign_in
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_people_chat_see_typing_presence_edits_and_deletes(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob", width=360)  # a phone
    await open_room(alice, "lobby")
    await open_room(bob, "lobby")
    await alice.wait_for_selector("#presence:text('bob')")
    await bob.wait_for_selector("#presence:text('alice')")

    await say(alice, "hi bob, the docs are at https://example.com/docs.")
    await shown(bob, "hi bob").wait_for()
    link = bob.locator("#messages a[href='https://example.com/docs']")
    assert await link.get_attribute("rel") == "noopener noreferrer"
    await bob.type("#body", "hello")
    await alice.wait_for_selector("#typing:text('bob is typing')")
    await bob.press("#body", "Shift+Enter")
    await bob.type("#body", "alice")
    await bob.press("#body", "Enter")
    await shown(alice, "hello").wait_for()
    assert await shown(alice, "hello").locator(".body").inner_text() == "hello\nalice"
    assert await alice.inner_text("#typing") == ""

    mine = shown(alice, "hi bob")
    await mine.hover()
    await mine.locator("button[data-action=edit]").click()
    await alice.fill("#messages .editor textarea", "hi bob, edited")
    await alice.press("#messages .editor textarea", "Enter")
    await shown(bob, "hi bob, edited").locator(".edited").wait_for()
    await mine.hover()
    await mine.locator("button[data-action=delete]").click()  # it asks first
    await mine.locator("button[data-action=cancel-delete]").click()
    await mine.locator("button[data-action=delete]").click()
    await mine.locator("button[data-action=confirm-delete]").click()
    await shown(bob, "Message deleted").wait_for()
    assert await shown(bob, "hi bob").count() == 0
    assert await shown(bob, "hello").locator("button[data-action=edit]").count() == 1, "own only"
    assert await shown(bob, "Message deleted").locator("button").count() == 0

    artifacts = Path(ROOT) / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    await alice.screenshot(path=artifacts / "room.png")
    await bob.screenshot(path=artifacts / "room-phone.png")
    assert alice.errors == [] and bob.errors == []


async def test_unread_counts_rise_live_and_clear_on_reading(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    await say(alice, "make me a member")  # alice and bob both follow the room from now on
    bob = await sign_in(browser, server, "bob")
    await open_room(bob, "lobby")
    await bob.click("#new-room summary")
    await bob.fill("#new-slug", "elsewhere")
    await bob.click("#new-room button[type=submit]")
    await bob.wait_for_selector("#room-title:text('elsewhere')")

    badge = bob.locator("a[data-room=lobby] .badge")
    for i in range(3):
        await say(alice, f"news {i}")
        await bob.wait_for_function(
            f"document.querySelector('a[data-room=lobby] .badge').textContent === '{i + 1}'"
        )
    assert await badge.is_visible()
    # At the end of the row, even with no mention badge shown before it.
    link, count = await bob.locator("a[data-room=lobby]").bounding_box(), await badge.bounding_box()
    assert link["x"] + link["width"] - (count["x"] + count["width"]) < 16
    await open_room(bob, "lobby")
    await badge.wait_for(state="hidden")
    async with asyncio.timeout(10):  # the read marker reaches the database
        while not await Membership.objects.filter(user__username="bob", last_read_seq=4).aexists():  # noqa: ASYNC110 - a database row, no event to wait on
            await asyncio.sleep(0.05)
    await bob.reload()  # no unread after a reload
    await bob.wait_for_selector("#room-list")
    assert await badge.is_hidden()


async def test_html_from_users_is_shown_as_text(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    dialogs = []
    for page in (alice, bob):
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await open_room(alice, "lobby")
    await open_room(bob, "lobby")
    attack = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    await say(alice, attack)
    await shown(bob, "onerror").wait_for()
    assert await shown(bob, "onerror").locator(".body").inner_text() == attack
    assert await bob.locator("#messages img, #messages script").count() == 0
    await alice.reload()  # from history too
    await open_room(alice, "lobby")
    await shown(alice, "onerror").wait_for()
    assert await alice.locator("#messages img, #messages script").count() == 0
    assert dialogs == []


async def test_a_server_restart_loses_and_doubles_nothing(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    await say(alice, "before the restart")
    await shown(alice, "before the restart").and_(alice.locator("[data-seq]")).wait_for()

    server.stop()
    await alice.wait_for_selector("#banner:text('Reconnecting')")
    await say(alice, "typed while offline")
    assert await alice.locator("#messages li.pending").count() == 1
    # Stored while this page was away (by another process, say): it must come back.
    room = await Room.objects.aget(slug="lobby")
    await database_sync_to_async(message_store_as_bob)(room)

    await asyncio.to_thread(server.restart)
    await alice.wait_for_selector("#banner", state="hidden")
    bob = await WsClient.open(server.ws_url + "?name=bo")
    await bob.send({"type": "join", "room": "lobby"})
    await bob.expect("joined")
    await bob.send(
        {
            "type": "send",
            "room": "lobby",
            "body": "after the restart",
            "client_id": str(uuid.uuid4()),
        }
    )
    await shown(alice, "after the restart").wait_for()
    await alice.locator("#messages li.pending").wait_for(state="detached")

    bodies = await alice.locator("#messages li.message .body").all_inner_texts()
    assert bodies == [
        "before the restart", "stored meanwhile", "typed while offline", "after the restart"
    ] or bodies == [
        "before the restart", "stored meanwhile", "after the restart", "typed while offline"
    ]  # fmt: skip
    seqs = await alice.eval_on_selector_all(
        "#messages li[data-seq]", "l => l.map(e => +e.dataset.seq)"
    )
    assert seqs == sorted(set(seqs)) and len(seqs) == 4
    assert await Message.objects.filter(body="typed while offline").acount() == 1
    assert alice.errors == []
    await bob.close()


def message_store_as_bob(room):
    from chat.services.stream import message_store

    message_store(
        room_id=room.pk, actor=Actor(name="bob"), body="stored meanwhile", client_id=uuid.uuid4()
    )


@pytest.fixture
def long_lobby(users):
    """A lobby with 120 messages."""
    from chat.services.stream import message_store

    room = room_make(slug="lobby", creator=users[0])
    for i in range(120):
        message_store(
            room_id=room.pk,
            actor=Actor(name="old"),
            body=f"old message {i + 1}",
            client_id=uuid.uuid4(),
        )


async def test_scrolling_up_loads_history_and_jump_to_latest_returns(browser, server, long_lobby):
    page = await sign_in(browser, server, "alice")
    await open_room(page, "lobby")
    await shown(page, "old message 120").wait_for()
    assert await page.locator("#messages li[data-seq]").count() == 50

    async with asyncio.timeout(20):  # scroll to the top until the first message is there
        while not await page.locator("#messages li[data-seq='1']").count():
            await page.eval_on_selector("#messages", "list => { list.scrollTop = 0; }")
            await asyncio.sleep(0.1)
    seqs = await page.eval_on_selector_all(
        "#messages li[data-seq]", "l => l.map(e => +e.dataset.seq)"
    )
    assert seqs == list(range(1, 121))

    bob = await WsClient.open(server.ws_url + "?name=bo")
    await bob.send({"type": "join", "room": "lobby"})
    await bob.expect("joined")
    await bob.send(
        {"type": "send", "room": "lobby", "body": "new one", "client_id": str(uuid.uuid4())}
    )
    await page.locator("#jump").wait_for()  # scrolled up: not yanked down, but offered a way
    assert await page.inner_text("#announcer") == "bo (guest): new one"  # a guest, as everywhere
    await page.click("#jump")
    await page.locator("#jump").wait_for(state="hidden")
    assert await page.eval_on_selector(
        "#messages", "l => l.scrollHeight - l.scrollTop - l.clientHeight < 40"
    )
    assert page.errors == []
    await bob.close()


async def test_guests_enter_with_a_name_and_new_users_sign_up(browser, server, users):
    context = await browser.new_context()
    guest = await context.new_page()
    await guest.goto(server.http_url + "/")
    await guest.fill("#guest-name", "visitor")
    await open_room(guest, "lobby")
    await say(guest, "hello from a guest")
    await guest.locator("#messages li[data-seq] .author:text('visitor (guest)')").wait_for()

    context = await browser.new_context()
    newcomer = await context.new_page()
    await newcomer.goto(server.http_url + "/accounts/signup/")
    await newcomer.fill("#id_username", "newcomer")
    await newcomer.fill("#id_password1", "correct horse battery")
    await newcomer.fill("#id_password2", "correct horse battery")
    await newcomer.click("button[type=submit]")
    await newcomer.wait_for_selector("#me:text('newcomer')")
    await open_room(newcomer, "lobby")
    await shown(newcomer, "hello from a guest").wait_for()
    await say(newcomer, "welcome!")
    await shown(guest, "welcome!").wait_for()


async def test_sends_refused_for_rate_go_again_after_retry_after(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    for i in range(14):  # past the burst of 10: some are refused with retry_after
        await say(alice, f"quick {i}")
    await alice.locator("#banner", has_text="rate limited").wait_for(state="attached")
    await alice.wait_for_function("!document.querySelector('#messages li.pending')")
    bodies = await alice.locator("#messages li.message .body").all_inner_texts()
    assert sorted(bodies) == sorted(f"quick {i}" for i in range(14))
    assert await Message.objects.acount() == 14

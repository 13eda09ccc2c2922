"""The composer and the forms beside it, as a new user meets them: nothing
typed is cut or thrown away, and a refusal says why, next to what was typed."""

import pytest
from channels.db import database_sync_to_async

from chat.models import Membership, Message
from tests.e2e.conftest import open_room, say, shown, sign_in
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_long_paste_is_kept_whole_counted_and_refused_until_shortened(
    browser, server, users
):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    await alice.fill("#body", "x" * 10_000)  # as a paste: all at once
    assert len(await alice.input_value("#body")) == 10_000, "nothing cut"
    counter = alice.locator("#counter")
    await counter.locator(":scope:text('10,000 / 4,000')").wait_for()
    assert "too long by 6,000" in await counter.inner_text()
    await alice.press("#body", "Enter")
    await alice.locator("#banner:text('Too long to send: 10,000 characters')").wait_for()
    assert await alice.locator("#messages li.message").count() == 0, "not sent"
    assert len(await alice.input_value("#body")) == 10_000, "kept, to shorten"

    await alice.fill("#body", "y" * 3_900)
    await counter.locator(":scope:text-is('3,900 / 4,000')").wait_for()
    await alice.locator("#banner").wait_for(state="hidden")
    await alice.press("#body", "Enter")
    await shown(alice, "yyyy").and_(alice.locator("[data-seq]")).wait_for()
    assert await counter.is_hidden()
    [stored] = [m.body async for m in Message.objects.all()]
    assert stored == "y" * 3_900


async def test_a_dm_to_an_unknown_user_keeps_the_form_and_says_why(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    await alice.click("#new-dm summary")
    await alice.fill("#dm-to", "nobody")
    await alice.fill("#dm-body", "are you real?")
    await alice.click("#dm-form button[type=submit]")
    await alice.locator("#dm-error:text('nobody')").wait_for()
    assert await alice.input_value("#dm-to") == "nobody"
    assert await alice.input_value("#dm-body") == "are you real?"
    assert await alice.locator("#dm-form").is_visible()
    assert await alice.inner_text("#room-title") == "lobby"

    await alice.fill("#dm-to", "bob")
    await alice.click("#dm-form button[type=submit]")
    await alice.wait_for_selector("#room-title:text-is('bob')")
    assert await alice.input_value("#dm-body") == "", "cleared once it went"
    assert await alice.locator("#dm-error").is_hidden()


async def test_a_room_name_taken_keeps_the_form_and_the_open_room(browser, server, users):
    await database_sync_to_async(room_make)(slug="taken", creator=users[1])
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "lobby")
    await alice.click("#new-room summary")
    await alice.fill("#new-slug", "taken")
    await alice.fill("#new-title", "My own room")
    await alice.click("#new-room button[type=submit]")
    await alice.locator("#room-error:text('taken')").wait_for()
    assert await alice.input_value("#new-slug") == "taken"
    assert await alice.input_value("#new-title") == "My own room"
    assert await alice.inner_text("#room-title") == "lobby"

    await alice.fill("#new-slug", "mine")
    await alice.click("#new-room button[type=submit]")
    await alice.wait_for_selector("#room-title:text-is('My own room')")
    await alice.locator("a[data-room=mine][aria-current=page]").wait_for()
    await say(alice, "my first words here")
    await shown(alice, "my first words here").and_(alice.locator("[data-seq]")).wait_for()
    assert await Message.objects.filter(room__slug="mine").acount() == 1
    assert alice.errors == []


async def test_an_invitation_refused_keeps_the_name_and_says_why(browser, server, users):
    await database_sync_to_async(room_make)(slug="club", creator=users[0], private=True)
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "club")
    await alice.fill("#invite-name", "nobody")
    await alice.click("#invite button[type=submit]")
    await alice.locator("#invite-note.error:text('nobody')").wait_for()
    assert await alice.input_value("#invite-name") == "nobody"
    assert await alice.inner_text("#room-title") == "club"

    await alice.fill("#invite-name", "bob")
    await alice.click("#invite button[type=submit]")
    await alice.locator("#invite-note:text-is('bob can now use #club.')").wait_for()
    assert await Membership.objects.filter(room__slug="club", user__username="bob").aexists()

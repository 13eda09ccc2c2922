"""Direct messages in the browser: started from "New message", listed apart,
announced live to the other person."""

import pytest

from tests.e2e.conftest import say, shown, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_dm_starts_with_its_first_message_and_reaches_the_other_live(
    browser, server, users
):
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob", width=360)
    await bob.wait_for_function("document.querySelector('#banner').hidden")  # connected

    await alice.click("#new-dm summary")
    await alice.fill("#dm-to", "bob")
    await alice.fill("#dm-body", "psst, a secret")
    await alice.click("#dm-form button[type=submit]")
    await alice.wait_for_selector("#room-title:text-is('bob')")
    await shown(alice, "psst, a secret").and_(alice.locator("[data-seq]")).wait_for()

    entry = bob.locator("#dm-list a", has_text="alice")
    await bob.locator("#rooms-toggle[data-unread='1']").wait_for()  # a phone: the drawer is shut
    await bob.click("#rooms-toggle")
    await entry.locator(".badge:text-is('1')").wait_for()
    assert await bob.locator("#room-list a", has_text="alice").count() == 0
    await entry.click()
    await bob.wait_for_selector("#room-title:text-is('alice')")
    await shown(bob, "psst, a secret").wait_for()
    await say(bob, "tell me more")
    await shown(alice, "tell me more").wait_for()

    await alice.reload()  # listed apart, from the server's page too
    await alice.locator("#dm-list a", has_text="bob").wait_for()
    assert alice.errors == [] and bob.errors == []


async def test_blocking_from_the_dm_stops_the_other_writing_until_unblocked(browser, server, users):
    alice = await sign_in(browser, server, "alice")
    await alice.click("#new-dm summary")
    await alice.fill("#dm-to", "bob")
    await alice.fill("#dm-body", "hi bob")
    await alice.click("#dm-form button[type=submit]")
    await shown(alice, "hi bob").and_(alice.locator("[data-seq]")).wait_for()
    assert await alice.locator("#block").inner_text() == "Block bob"

    bob = await sign_in(browser, server, "bob")
    await bob.locator("#dm-list a", has_text="alice").click()
    await shown(bob, "hi bob").wait_for()
    await bob.click("#block:text-is('Block alice')")
    await bob.locator("#block:text-is('Unblock alice')").wait_for()
    await say(alice, "are you there?")
    await shown(alice, "are you there?").and_(alice.locator(".failed")).wait_for()
    await alice.locator("#banner:text('someone in this DM has blocked you')").wait_for()

    await bob.reload()  # the page knows whom it blocked
    await bob.locator("#dm-list a", has_text="alice").click()
    await bob.click("#block:text-is('Unblock alice')")
    await bob.locator("#block:text-is('Block alice')").wait_for()
    await say(alice, "hello again")
    await shown(bob, "hello again").wait_for()
    assert bob.errors == [] and alice.errors == []

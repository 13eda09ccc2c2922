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

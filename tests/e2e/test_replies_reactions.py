"""Replying and reacting in the browser, between two people."""

import pytest

from tests.e2e.conftest import both_in, open_room, say, shown

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_reply_quotes_the_original_and_reactions_toggle(browser, server, users):
    alice, bob = await both_in(browser, server, "lobby", bob_width=360)
    await say(alice, "what's for lunch?")
    question = shown(bob, "what's for lunch?")
    await question.and_(bob.locator("[data-seq]")).wait_for()

    await question.click()  # bob is on a phone: a tap shows the actions
    await question.locator("button[data-action=reply]").click()
    await bob.locator("#replying", has_text="what's for lunch?").wait_for()
    await say(bob, "pizza")
    await bob.locator("#replying").wait_for(state="hidden")
    answer = shown(alice, "pizza")
    await answer.locator(".quote", has_text="what's for lunch?").wait_for()
    assert await answer.locator(".quote .author").inner_text() == "alice"
    await answer.locator(".quote").click()
    await shown(alice, "what's for lunch?").and_(alice.locator(".flash")).wait_for()

    # alice reacts from the palette; bob sees it and joins in; alice takes hers back.
    await answer.hover()
    await answer.locator("button[data-action=react]").click()
    await alice.click(".palette button[data-pick='👍']")
    chip = "li.message:has-text('pizza') button.reaction[data-emoji='👍']"
    await bob.locator(chip, has_text="👍 1").wait_for()
    assert await bob.get_attribute(chip, "title") == "alice"
    assert await bob.get_attribute(chip, "aria-pressed") == "false"
    await bob.click(chip)
    await alice.locator(chip, has_text="👍 2").wait_for()
    await bob.locator(f"{chip}[aria-pressed=true]", has_text="👍 2").wait_for()
    await alice.click(chip)
    await bob.locator(chip, has_text="👍 1").wait_for()
    await alice.locator(f"{chip}[aria-pressed=false]", has_text="👍 1").wait_for()

    await bob.reload()  # from history: the quote and the reaction as they are now
    await open_room(bob, "lobby")
    await bob.locator(f"{chip}[aria-pressed=true]", has_text="👍 1").wait_for()
    await shown(bob, "pizza").locator(".quote", has_text="what's for lunch?").wait_for()
    assert alice.errors == [] and bob.errors == []

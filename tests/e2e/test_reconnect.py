"""Losing the server and getting it back, as the page shows it: stepped,
jittered backoff counted down aloud, and a try at once when asked."""

import re

import pytest

from tests.e2e.conftest import Network, open_room, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

DELAYS = """async () => {
  const { backoffDelay } = await import("/static/chat/connection.js");
  const attempts = [0, 1, 2, 3, 4, 9];
  return {
    most: attempts.map((a) => backoffDelay(a, () => 1)),
    least: attempts.map((a) => backoffDelay(a, () => 0)),
  };
}"""


async def test_the_backoff_is_1_2_5_then_10_s_jittered_down_by_up_to_half(browser, start_server):
    server = start_server(DEBUG="1")
    page = await browser.new_page()
    await page.goto(server.http_url + "/")
    delays = await page.evaluate(DELAYS)
    assert delays["most"] == [1000, 2000, 5000, 10000, 10000, 10000]
    assert delays["least"] == [500, 1000, 2500, 5000, 5000, 5000]


async def countdown(page) -> int:
    """The seconds the banner says are left before the next try."""
    text = await page.inner_text("#banner")
    return int(re.search(r"Reconnecting in (\d+) s", text).group(1))


async def wait_for_a_long_wait(page) -> int:
    """Wait until the banner counts down from 4 s or more (the 4th try on)."""
    await page.wait_for_function(
        "/Reconnecting in ([4-9]|10) s/.test(document.querySelector('#banner').textContent)",
        timeout=30_000,
    )
    return await countdown(page)


async def test_the_wait_counts_down_and_reconnect_now_or_coming_online_try_at_once(
    browser, server, users
):
    alice = await sign_in(browser, server, "alice")
    network = Network()
    await network.attach(alice)
    await open_room(alice, "lobby")
    await alice.locator("#banner").wait_for(state="hidden")

    await network.down()
    left = await wait_for_a_long_wait(alice)
    await alice.wait_for_function(  # it counts down, live
        f"document.querySelector('#banner').textContent.includes('Reconnecting in {left - 1} s')"
    )
    network.up = True
    await alice.click("#reconnect")
    await alice.locator("#banner").wait_for(state="hidden", timeout=1_500)  # not in {left - 1} s
    assert await alice.locator("#reconnect").is_hidden()

    await network.down()
    await wait_for_a_long_wait(alice)
    network.up = True
    await alice.evaluate("window.dispatchEvent(new Event('online'))")  # the network came back
    await alice.locator("#banner").wait_for(state="hidden", timeout=1_500)
    assert alice.errors == []

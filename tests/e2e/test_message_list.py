"""The message list, with what every chat client has: days, the full time on
hover, where the unread begin, an empty or loading room, avatars, right-to-left
text, long messages folded, and actions and reactions that keep the text in view."""

import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.actor import Actor
from chat.models import Membership, Message
from chat.services.stream import message_store
from tests.conftest import WsClient
from tests.e2e.conftest import Network, open_room, say, shown, sign_in
from tests.factories import member_make, room_make, token_make

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def lobby_with(owner, *messages: tuple[object, str]):
    """The lobby, with these (user, body) messages in it."""
    room = room_make(slug="lobby", creator=owner)
    for user, body in messages:
        message_store(
            room_id=room.pk,
            actor=Actor(name=user.username, user=user),
            body=body,
            client_id=uuid.uuid4(),
        )
    return room


async def children(page) -> list[tuple[str, str]]:
    """The list's items, in order, as (kind, text): a day, the unread line, or a message's body."""
    items = await page.eval_on_selector_all(
        "#messages > li",
        """items => items.map(li => li.classList.contains("message")
            ? ["message", li.querySelector(".body").innerText] : [li.className, li.innerText])""",
    )
    return [tuple(item) for item in items]


async def test_days_are_separated_and_a_time_shows_its_full_date_on_hover(browser, server, users):
    bob = users[1]
    room = await lobby_with(bob, (bob, "last week"), (bob, "yesterday"), (bob, "today"))
    now = timezone.now()
    early = now - timedelta(days=5)
    await Message.objects.filter(room=room, seq=1).aupdate(created=early)
    await Message.objects.filter(room=room, seq=2).aupdate(created=now - timedelta(days=1))
    page = await sign_in(browser, server, "alice", timezone_id="UTC")
    await open_room(page, "lobby")
    await shown(page, "today").wait_for()
    items = await children(page)
    assert [kind for kind, _ in items] == ["day", "message", "day", "message", "day", "message"]
    days = [text for kind, text in items if kind == "day"]
    assert days[1:] == ["Yesterday", "Today"]
    assert str(early.year) in days[0] and str(early.day) in days[0], days[0]
    time = shown(page, "last week").locator("time")
    assert await time.get_attribute("datetime") == early.isoformat().replace("+00:00", "Z")
    full = await time.get_attribute("title")
    assert str(early.year) in full and str(early.day) in full, full


async def test_opening_a_room_marks_where_the_unread_begin_and_the_tab_counts_them(
    browser, server, users
):
    alice, bob = users
    room = await lobby_with(bob, *((bob, f"news {i}") for i in range(1, 6)))
    await database_sync_to_async(member_make)(room=room, user=alice)
    await Membership.objects.filter(user=alice).aupdate(last_read_seq=2)
    page = await sign_in(browser, server, "alice")
    assert await page.title() == "(3) Chat"
    await open_room(page, "lobby")
    await shown(page, "news 5").wait_for()
    items = await children(page)
    line = items.index(("unread-line", "New messages"))
    assert items[line + 1] == ("message", "news 3"), items
    await page.wait_for_function("document.title === 'Chat'")  # read, once shown


async def test_an_empty_room_says_so_and_one_loading_says_that(browser, server, users):
    await database_sync_to_async(room_make)(slug="quiet", creator=users[0])
    page = await sign_in(browser, server, "alice")
    network = Network()
    await network.attach(page)
    await network.down()
    await open_room(page, "quiet")
    state = page.locator("#list-state")
    await state.locator(":scope:text-is('Loading messages…')").wait_for()
    network.up = True
    await page.click("#reconnect")
    await state.locator(":scope:text-is('No messages yet. Say hello!')").wait_for()
    await say(page, "hello?")
    await state.wait_for(state="hidden")


async def test_avatars_right_to_left_text_long_messages_and_actions_beside_the_text(
    browser, server, users
):
    alice, bob = users
    long = "word " * 600
    await lobby_with(
        bob, (alice, "hi"), (bob, "مرحبا بالعالم"), (alice, "again"), (alice, long.strip())
    )
    page = await sign_in(browser, server, "alice")
    await open_room(page, "lobby")
    await shown(page, "word word").wait_for()

    avatars = page.locator("#messages li:not(.continued) .avatar")
    assert await avatars.all_inner_texts() == ["AL", "BO", "AL"], "a run by one author shows one"
    colours = await avatars.evaluate_all("a => a.map(e => getComputedStyle(e).backgroundColor)")
    assert colours[0] == colours[2] != colours[1]

    arabic = shown(page, "مرحبا").locator(".body")
    assert await arabic.get_attribute("dir") == "auto"
    assert await arabic.evaluate("b => getComputedStyle(b).direction") == "rtl"

    message = shown(page, "word word")
    body = message.locator(".body")
    assert await body.evaluate("b => b.scrollHeight > b.clientHeight + 100"), "folded"
    await message.hover()
    actions = await message.locator(".actions").bounding_box()
    text = await body.bounding_box()
    assert actions["x"] >= text["x"] + text["width"], "the actions sit beside the text"
    await message.locator("button.more:text-is('Show more')").click()
    await message.locator("button.more:text-is('Show less')").wait_for()
    assert await body.evaluate("b => b.scrollHeight <= b.clientHeight + 1"), "unfolded"


async def test_a_reaction_arriving_keeps_the_last_message_in_view(browser, server, users):
    bob = users[1]
    await lobby_with(bob, *((bob, f"line {i}") for i in range(1, 41)))
    page = await sign_in(browser, server, "alice")
    await open_room(page, "lobby")
    await shown(page, "line 40").wait_for()
    gap = "l => l.scrollHeight - l.scrollTop - l.clientHeight"
    assert await page.eval_on_selector("#messages", gap) < 1

    token = await database_sync_to_async(token_make)(user=bob)
    ws = await WsClient.open(server.ws_url, additional_headers={"Authorization": f"Bearer {token}"})
    await ws.send({"type": "join", "room": "lobby"})
    await ws.expect("joined")
    react = {"type": "react", "room": "lobby", "seq": 40, "emoji": "🎉", "on": True}
    await ws.send({**react, "client_id": str(uuid.uuid4())})
    await shown(page, "line 40").locator("button.reaction").wait_for()
    assert await page.eval_on_selector("#messages", gap) < 1, "still at the bottom"
    await ws.close()

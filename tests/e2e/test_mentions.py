"""Mentions in the browser: the badge, the highlight, the inbox that leads to
the message, and a desktop notification while the tab is hidden."""

import uuid

import pytest

from chat.actor import Actor
from chat.services.stream import message_store
from tests.conftest import WsClient
from tests.e2e.conftest import both_in, open_room, say, shown, sign_in
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)

# Chromium shows notifications to the desktop, which a test cannot see: this
# keeps a copy of each one the page makes, then lets Chromium show it.
RECORD_NOTIFICATIONS = """
window.notes = [];
window.Notification = class extends window.Notification {
  constructor(title, options) { super(title, options); window.notes.push([title, options.body]); }
};
"""
# Headless Chromium keeps every tab visible (another tab in front, or a
# minimized window, change nothing), so the document is made to say it is hidden.
HIDE = """
Object.defineProperty(document, "hidden", { get: () => true });
Object.defineProperty(document, "visibilityState", { get: () => "hidden" });
document.dispatchEvent(new Event("visibilitychange"));
"""


@pytest.fixture
def lobby(users):
    """alice's lobby, with bob in it: a mention of bob, then 120 messages."""
    alice, bob = users
    room = room_make(slug="lobby", creator=alice)
    member_make(room=room, user=bob)
    for body in ["@bob have a look at this", *(f"filler {i}" for i in range(120))]:
        message_store(room_id=room.pk, actor=Actor(name="alice", user=alice), body=body,
                      client_id=uuid.uuid4())  # fmt: skip


async def test_a_mention_is_counted_marked_listed_and_notified(browser, server, lobby):
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob", permissions=["notifications"])
    await bob.add_init_script(RECORD_NOTIFICATIONS)
    await bob.reload()
    badge = bob.locator("a[data-room=lobby] .mention-badge")
    assert await badge.inner_text() == "@1"  # counted by the server
    await open_room(alice, "lobby")
    await bob.click("#new-room summary")
    await bob.fill("#new-slug", "elsewhere")
    await bob.click("#new-room button[type=submit]")
    await bob.wait_for_selector("#room-title:text('elsewhere')")
    await bob.wait_for_function("document.querySelector('#banner').hidden")
    await say(alice, "@bob and one more")
    await bob.locator("a[data-room=lobby] .mention-badge:text-is('@2')").wait_for()

    await bob.click("#inbox summary")
    items = bob.locator("#inbox-list button")
    await items.first.wait_for()
    assert await items.all_inner_texts() == [
        "#lobby · alice: @bob and one more", "#lobby · alice: @bob have a look at this"
    ]  # fmt: skip
    await items.last.click()  # 121 messages back: the page pages back to it
    await bob.wait_for_selector("#room-title:text('lobby')")
    mention = shown(bob, "@bob have a look at this")
    await mention.and_(bob.locator(".mentioned.flash")).wait_for()
    assert await mention.is_visible()
    await badge.wait_for(state="hidden")

    # With the tab hidden, a mention notifies; other messages do not.
    await bob.evaluate(HIDE)
    await say(alice, "@bob are you there?")
    await bob.wait_for_function("window.notes.length === 1")
    assert await bob.evaluate("window.notes") == [["alice in #lobby", "@bob are you there?"]]
    await say(alice, "no mention, no notification")
    await shown(bob, "no mention, no notification").wait_for(state="attached")
    assert await bob.evaluate("window.notes.length") == 1
    # A guest's mention: the title says it is a guest's, as the timeline does.
    guest = await WsClient.open(f"{server.ws_url}?name=visitor")
    await guest.send({"type": "join", "room": "lobby"})
    await guest.expect("joined")
    body = "@bob a guest here"
    await guest.send(
        {"type": "send", "room": "lobby", "body": body, "client_id": str(uuid.uuid4())}
    )
    await bob.wait_for_function("window.notes.length === 2")
    assert (await bob.evaluate("window.notes"))[1] == ["visitor (guest) in #lobby", body]
    await guest.close()
    assert alice.errors == [] and bob.errors == []


async def test_an_edit_that_adds_or_drops_a_mention_marks_or_unmarks_it(browser, server, users):
    alice, bob = await both_in(browser, server, "lobby")
    await say(alice, "see you at noon")
    mine, theirs = shown(alice, "see you at noon"), shown(bob, "see you at noon")
    await theirs.wait_for()

    async def edit(text: str) -> None:
        await mine.hover()
        await mine.locator("button[data-action=edit]").click()
        await alice.fill("#messages .editor textarea", text)
        await alice.press("#messages .editor textarea", "Enter")
        await shown(bob, text).locator(".edited").wait_for()

    await edit("see you at noon, @bob")
    await shown(bob, "@bob").and_(bob.locator(".mentioned")).wait_for()
    await edit("see you at noon, all")
    await bob.locator("#messages .mentioned").wait_for(state="detached")
    assert alice.errors == [] and bob.errors == []

"""Moderating in the browser: a moderator's delete, slash commands, and what
the muted or banned user sees."""

import json

import pytest

from chat import protocol
from chat.models import Membership, ModerationLog
from tests.e2e.conftest import both_in, open_room, say, shown, sign_in
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def club(users):
    alice, bob = users
    room = room_make(slug="club", creator=alice)
    member_make(room=room, user=bob)


async def test_the_owner_deletes_mutes_and_bans_and_bob_sees_it(browser, server, club):
    alice, bob = await both_in(browser, server, "club")
    await say(bob, "cheap watches here")
    spam = shown(alice, "cheap watches")
    await spam.and_(alice.locator("[data-seq]")).wait_for()
    await spam.hover()
    await spam.locator("button[data-action=delete]").click()
    await spam.locator("button[data-action=confirm-delete]").click()
    await shown(bob, "Message deleted").wait_for()

    await say(alice, "/mute bob 10m spam")
    for page in (alice, bob):
        await page.locator("#messages li.notice", has_text="alice muted bob until").wait_for()
    assert await alice.input_value("#body") == ""
    await say(bob, "let me talk")
    await bob.locator("#banner", has_text="you are muted in room 'club'").wait_for()
    await bob.locator("#messages li.failed", has_text="let me talk").wait_for()

    await say(alice, "/ban bob 1h")
    await bob.locator("#banner", has_text="You were banned from #club.").wait_for()
    assert await bob.locator("#composer").is_hidden()
    await alice.locator("#messages li.notice", has_text="alice banned bob").wait_for()
    assert not await Membership.objects.filter(user__username="bob").aexists()
    actions = [
        a async for a in ModerationLog.objects.order_by("pk").values_list("action", flat=True)
    ]
    assert actions == ["delete", "mute", "ban"]

    await say(alice, "/smite bob")
    await alice.locator("#banner", has_text="unknown command /smite").wait_for()
    assert alice.errors == [] and bob.errors == []


COMMANDS = [
    "/kick bob",
    "/kick bob being rude",
    "/ban mallory 1d spam and scams",
    "/ban mallory",
    "/unban mallory",
    "/mute bob 30m",
    "/unmute bob",
    "/mod carol",
    "/unmod carol",
]


async def test_every_slash_command_makes_a_frame_the_server_accepts(browser, start_server):
    server = start_server(DEBUG="1")
    page = await browser.new_page()
    await page.goto(server.http_url + "/")
    results = await page.evaluate(
        """async (commands) => {
          const { parseCommand } = await import("/static/chat/commands.js");
          return commands.map((c) => parseCommand(c, "lobby"));
        }""",
        [*COMMANDS, "/kick bob 5m", "/zap bob", "/ban", "hello"],
    )
    frames = [protocol.parse_frame(json.dumps(r["frame"])) for r in results[: len(COMMANDS)]]
    assert [(f.action, f.user, f.minutes, f.reason) for f in frames] == [
        ("kick", "bob", None, ""),
        ("kick", "bob", None, "being rude"),
        ("ban", "mallory", 1440, "spam and scams"),
        ("ban", "mallory", None, ""),
        ("unban", "mallory", None, ""),
        ("mute", "bob", 30, ""),
        ("unmute", "bob", None, ""),
        ("promote", "carol", None, ""),
        ("demote", "carol", None, ""),
    ]
    assert [list(r) if r else None for r in results[len(COMMANDS) :]] == [
        ["error"], ["error"], ["error"], None
    ]  # fmt: skip


async def test_the_owner_lets_guests_only_read_and_a_guest_is_asked_to_sign_in(
    browser, server, club
):
    alice = await sign_in(browser, server, "alice")
    await open_room(alice, "club")
    setting = alice.locator("#guests-can-write")
    assert await setting.is_checked()
    async with alice.expect_response(lambda r: r.request.method == "PATCH") as patched:
        await setting.uncheck()
    assert (await (await patched.value).json())["guests_can_write"] is False

    guest = await (await browser.new_context()).new_page()
    await guest.goto(server.http_url + "/")
    await guest.fill("#guest-name", "visitor")
    await open_room(guest, "club")
    await guest.locator("#read-only:text('sign in to write')").wait_for()
    assert await guest.locator("#composer").is_hidden()
    assert await guest.locator("#guests-setting").is_hidden()
    await guest.locator("a[data-room=lobby]").click()  # elsewhere, guests write
    await guest.locator("#composer").wait_for()
    assert await guest.locator("#read-only").is_hidden()
    assert alice.errors == []

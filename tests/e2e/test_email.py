"""What email leads to in the browser: a password reset end to end, and the
link of a missed-message email opening the room at the message; and a
room's export asked for, followed and downloaded from the page."""

import asyncio
import io
import json
import re
import uuid
import zipfile
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import F

from chat.actor import Actor
from chat.models import Message, Profile
from chat.services import notify
from chat.services.messages import message_send
from tests.conftest import mail_text
from tests.e2e.conftest import TIMEOUT_MS, open_room, say, shown, sign_in
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_forgotten_password_is_reset_by_email_in_the_browser(
    browser, start_server, smtp, users
):
    server = start_server(DEBUG="1", **smtp.env, CHAT_SITE_URL="http://127.0.0.1:1")
    await get_user_model().objects.filter(username="alice").aupdate(email="alice@example.com")
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{server.http_url}/accounts/login/")
    await page.click("text=Forgot your password?")
    await page.fill("#id_email", "alice@example.com")
    await page.click("button[type=submit]")
    await page.locator("#reset-sent").wait_for()

    mail = await smtp.next()
    assert mail["To"] == "alice@example.com"
    path = re.search(r"http://127\.0\.0\.1:1(/accounts/reset/\S+)", mail_text(mail))[1]
    await page.goto(server.http_url + path)  # the link, on the server that sent it
    await page.fill("#id_new_password1", "a brand new pass 7")
    await page.fill("#id_new_password2", "a brand new pass 7")
    await page.click("button[type=submit]")
    await page.locator("#reset-complete").wait_for()

    await page.goto(f"{server.http_url}/accounts/login/")
    await page.fill("#id_username", "alice")
    await page.fill("#id_password", "a brand new pass 7")
    await page.click("button[type=submit]")
    await page.locator("#me:text-is('alice')").wait_for()
    await page.goto(server.http_url + path)  # a reset link works once
    assert await page.locator("text=This link does not work").is_visible()
    await context.close()


async def test_the_link_in_a_missed_message_email_opens_the_room_at_the_message(
    browser, start_server, smtp, users, settings
):
    alice, bob = users

    def setup():
        get_user_model().objects.filter(pk=bob.pk).update(email="bob@example.com")
        Profile.objects.create(user=bob, verified_email="bob@example.com")
        member_make(room=room_make(slug="den", creator=alice), user=bob)

    await database_sync_to_async(setup)()
    settings.CHAT_SEND_BURST = settings.CHAT_IP_SEND_BURST = 1000
    actor = Actor(name="alice", user=alice)
    for n in range(120):  # the mention is far above the latest page
        body = "@bob the one to find" if n == 0 else f"filler {n}"
        await message_send(actor=actor, slug="den", body=body, client_id=uuid.uuid4())
    delay = timedelta(seconds=settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    await Message.objects.aupdate(created=F("created") - delay)
    server = start_server(DEBUG="1")
    settings.CHAT_SITE_URL = server.http_url
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 1
    link = re.search(r"(http://\S+/#den/1)(?!\d)", mail_text(await smtp.next()))[1]

    page = await sign_in(browser, server, "bob")
    await page.goto(link)
    target = page.locator("#messages li[data-seq='1']")
    await target.wait_for()
    assert "the one to find" in await target.inner_text()
    assert await target.is_visible()  # scrolled to it
    assert page.errors == []


async def test_the_owner_exports_a_room_from_the_page(browser, start_server, users):
    alice, bob = users
    await database_sync_to_async(
        lambda: member_make(room=room_make(slug="den", creator=alice), user=bob)
    )()
    server = start_server(DEBUG="1")
    page = await sign_in(browser, server, "alice")
    await open_room(page, "den")
    await say(page, "keep this")
    await shown(page, "keep this").wait_for()
    await page.click("#export")
    link = page.locator("#export-note a", has_text="Download the export of #den")
    await link.wait_for()
    reply = await page.request.get(server.http_url + await link.get_attribute("href"))
    assert reply.ok
    entries = json.loads(zipfile.ZipFile(io.BytesIO(await reply.body())).read("messages.json"))
    assert [e["body"] for e in entries] == ["keep this"]

    as_bob = await sign_in(browser, server, "bob")
    await open_room(as_bob, "den")
    assert await as_bob.locator("#export").is_hidden()  # a member, not the owner
    assert page.errors == [] and as_bob.errors == []

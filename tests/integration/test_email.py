"""Email, received by a real SMTP server on loopback (aiosmtpd): missed-message
emails worked out from the database, the one-click unsubscribe link, and
address verification. Tasks run here as a worker would run them (`apply`);
tests/integration/test_tasks.py runs them on a real worker."""

import asyncio
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat import tasks
from chat.actor import Actor
from chat.models import Membership, Message, Profile, Sanction
from chat.services import notify
from chat.services.dms import dm_send
from chat.services.mail import unsubscribe_url
from chat.services.users import users_seen
from tests.conftest import free_port, mail_html, mail_text
from tests.integration.conftest import age, say

pytestmark = pytest.mark.django_db(transaction=True)


def due() -> list[int]:
    return notify.notify_due()


async def test_a_mention_of_an_away_user_is_emailed_once_after_the_delay(away_bob, smtp, settings):
    alice, bob = away_bob
    await say(alice, "@bob are you there? <b>hi</b> & bye")
    await say(alice, "not about bob")
    assert await asyncio.to_thread(due) == []  # not yet: under CHAT_NOTIFY_EMAIL_DELAY old
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    await asyncio.to_thread(tasks.notify_due.apply)

    mail = await smtp.next()
    assert mail["To"] == "bob@example.com" and mail["Subject"] == "1 unread message in Chat"
    text, html = mail_text(mail), mail_html(mail)
    assert "alice" in text and "@bob are you there? <b>hi</b> & bye" in text
    assert "not about bob" not in text
    assert (
        f"{settings.CHAT_SITE_URL}/#den/1" in text and 'href="http://127.0.0.1:8000/#den/1"' in html
    )
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in html and "<b>hi</b>" not in html
    link = re.search(rb"\r\nList-Unsubscribe: <(\S+)>\r\n", mail.raw)[1].decode()  # one line, as is
    assert link.startswith(f"{settings.CHAT_SITE_URL}/email/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Once sent, nothing more is owed: not by a repeated task, nor later.
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 0
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    assert await asyncio.to_thread(due) == []
    assert len(smtp.inbox) == 1


async def test_duplicated_send_tasks_running_at_once_send_one_email(away_bob, smtp, settings):
    alice, bob = away_bob
    await say(alice, "@bob hello")
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)

    def send() -> None:
        tasks.notify_send.apply(kwargs={"user_id": bob.pk}).get()

    await asyncio.gather(*(asyncio.to_thread(send) for _ in range(3)))
    assert len(smtp.inbox) == 1
    membership = await Membership.objects.aget(user=bob)
    assert membership.notified_seq == 1


async def test_no_email_when_seen_since_unverified_opted_out_or_barred(away_bob, smtp, settings):
    alice, bob = away_bob
    await say(alice, "@bob one")
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    await users_seen(user_ids={bob.pk})  # a socket of bob's was open after it
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 0

    await say(alice, "@bob two")
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    for change in ({"verified_email": ""}, {"notify_email": False}):
        await Profile.objects.filter(user=bob).aupdate(**change)
        assert await asyncio.to_thread(due) == []
        await Profile.objects.filter(user=bob).aupdate(
            verified_email="bob@example.com", notify_email=True
        )
    ban = await Sanction.objects.acreate(room_id=(await bob_room(bob)), user=bob, kind="ban")
    assert await asyncio.to_thread(due) == []  # a room bob may no longer read
    await ban.adelete()
    assert await asyncio.to_thread(due) == [bob.pk]
    assert smtp.inbox == []


async def bob_room(bob) -> int:
    return (await Membership.objects.aget(user=bob)).room_id


async def test_one_email_batches_rooms_and_dms_and_comes_at_most_once_per_delay(
    away_bob, smtp, settings
):
    alice, bob = away_bob
    await say(alice, "@bob in the den")
    await dm_send(
        actor=Actor(name="alice", user=alice),
        usernames=["bob"],
        body="a DM",
        client_id=uuid.uuid4(),
    )
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 2
    text = mail_text(await smtp.next())
    assert text.index("Direct messages") < text.index("a DM")
    assert text.index("The den") < text.index("@bob in the den")

    await say(alice, "@bob again")
    await Message.objects.filter(body="@bob again").aupdate(
        created=timezone.now() - timedelta(seconds=settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    )
    # Due, but bob was emailed less than CHAT_NOTIFY_EMAIL_DELAY ago.
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 0
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 1
    assert "@bob again" in mail_text(await smtp.next())
    assert len(smtp.inbox) == 2


async def test_a_send_that_fails_records_nothing_and_a_retry_sends_it(away_bob, smtp, settings):
    alice, bob = away_bob
    await say(alice, "@bob hello")
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    settings.EMAIL_PORT = free_port()  # nothing listens there: SMTP is down
    with pytest.raises(OSError):
        await asyncio.to_thread(notify.notify_send, user_id=bob.pk)
    assert (await Membership.objects.aget(user=bob)).notified_seq == 0
    assert (await Profile.objects.aget(user=bob)).notified is None
    settings.EMAIL_PORT = smtp.port
    assert await asyncio.to_thread(notify.notify_send, user_id=bob.pk) == 1
    assert len(smtp.inbox) == 1


def test_the_unsubscribe_link_works_without_a_login_and_a_forged_one_does_not(make_user):
    bob = make_user("bob", email="bob@example.com")
    Profile.objects.create(user=bob, verified_email="bob@example.com")
    path = unsubscribe_url(user_id=bob.pk).removeprefix("http://127.0.0.1:8000")
    client = Client()  # no session: the token is the credential
    page = client.get(path)
    assert page.status_code == 200 and b"Stop these emails?" in page.content
    assert Profile.objects.get(user=bob).notify_email  # a GET (a mail scanner) changes nothing

    carol = make_user("carol")
    Profile.objects.create(user=carol)
    token = path.rsplit("/", 1)[1]
    forged = [
        path[:-1] + ("A" if path[-1] != "A" else "B"),  # tampered signature
        f"/email/unsubscribe/{carol.pk}:{token.split(':', 1)[1]}",  # carol, with bob's signature
        "/email/unsubscribe/nonsense",
    ]
    for url in forged:
        refused = client.post(url, "List-Unsubscribe=One-Click", content_type="text/plain")
        assert refused.status_code == 400, url
    assert Profile.objects.get(user=carol).notify_email

    # RFC 8058: a POST with List-Unsubscribe=One-Click, no cookie, no CSRF token.
    done = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert done.status_code == 200 and b"Unsubscribed" in done.content
    assert not Profile.objects.get(user=bob).notify_email
    assert Profile.objects.get(user=carol).notify_email


async def test_an_address_is_verified_by_its_link_and_a_new_one_must_be_again(smtp):
    client = Client()

    def signup():
        return client.post(
            "/accounts/signup/",
            {"username": "dora", "email": "dora@example.com", "password1": "a long pass 12",
             "password2": "a long pass 12"},
        )  # fmt: skip

    assert (await asyncio.to_thread(signup)).status_code == 302
    mail = await smtp.next()
    assert mail["To"] == "dora@example.com"
    first = re.search(r"http://127\.0\.0\.1:8000(/accounts/verify/\S+)", mail_text(mail))[1]
    assert (await Profile.objects.aget(user__username="dora")).verified_email == ""

    settings_page = await asyncio.to_thread(client.get, "/settings/")
    assert b"dora@example.com:" in settings_page.content
    assert b"not confirmed yet" in settings_page.content
    page = await asyncio.to_thread(Client().get, first)  # no login needed
    assert page.status_code == 200 and b"Address confirmed" in page.content
    settings_page = await asyncio.to_thread(client.get, "/settings/")
    assert b"<strong>confirmed</strong>" in settings_page.content
    assert (await Profile.objects.aget(user__username="dora")).verified_email == "dora@example.com"

    def change():
        return client.post("/settings/", {"email": "dora@new.example", "notify_email": "on"})

    assert (await asyncio.to_thread(change)).status_code == 302
    second = re.search(r"(/accounts/verify/\S+)", mail_text(await smtp.next()))[1]
    assert (await asyncio.to_thread(Client().get, first)).status_code == 400  # the old address
    assert (await asyncio.to_thread(Client().get, second)).status_code == 200
    profile = await Profile.objects.select_related("user").aget(user__username="dora")
    assert profile.verified_email == profile.user.email == "dora@new.example"


async def test_mail_on_request_is_rate_limited_per_user_and_per_recipient(
    smtp, make_user, settings
):
    settings.CHAT_MAIL_BURST = 2
    settings.CHAT_MAIL_PER_HOUR = 1
    dora = await asyncio.to_thread(make_user, "dora", email="dora@example.com")
    client = Client()
    await asyncio.to_thread(client.force_login, dora)

    def change(email):
        return client.post("/settings/", {"email": email, "notify_email": "on"}, follow=True)

    for n in (1, 2):
        assert b"Check your inbox" in (await asyncio.to_thread(change, f"d{n}@example.com")).content
    refused = await asyncio.to_thread(change, "d3@example.com")
    assert b"Too many emails asked for" in refused.content
    assert (await asyncio.to_thread(lambda: type(dora).objects.get(pk=dora.pk).email)) == (
        "d2@example.com"
    )  # the refused change changed nothing

    def reset(email, address="127.0.0.1"):
        return Client(REMOTE_ADDR=address).post("/accounts/password_reset/", {"email": email})

    # Whether or not an account has the address: the same limit, the same answer.
    fay = await asyncio.to_thread(make_user, "fay", email="fay@example.com")
    for email in (fay.email, "nobody@example.com"):
        for _ in range(2):
            assert (await asyncio.to_thread(reset, email)).status_code == 302
        refused = await asyncio.to_thread(reset, email)
        assert refused.status_code == 200 and b"Too many emails asked for" in refused.content
    received = [(await smtp.next())["To"] for _ in range(4)]
    assert sorted(received) == ["d1@example.com", "d2@example.com", fay.email, fay.email]
    # This address has asked for 6 now, three times the per-user burst: no more.
    marker = await asyncio.to_thread(make_user, "eve", email="eve@example.com")
    assert b"Too many emails" in (await asyncio.to_thread(reset, marker.email)).content
    await asyncio.to_thread(reset, marker.email, "10.0.0.9")
    assert (await smtp.next())["To"] == "eve@example.com"
    assert len(smtp.inbox) == 5, "the refused ones sent nothing"

"""Sockets close when the credentials that opened them end: a log-out, a
deactivated account (a revoked token: tests/integration/test_api.py). At once
through the channel layer, and by the sweep if that event is lost."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client as HttpClient

from chat.realtime import sweep

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in_browser(user) -> tuple[HttpClient, bytes]:
    http = HttpClient()
    http.force_login(user)
    return http, f"sessionid={http.cookies['sessionid'].value}".encode()


async def closed_with_4401(client, detail: str) -> None:
    frame = await client.expect("error")
    assert frame["code"] == "unauthorized" and detail in frame["detail"], frame
    assert await client.communicator.receive_output(timeout=5) == {
        "type": "websocket.close", "code": 4401,
    }  # fmt: skip


@pytest.fixture
async def sockets(connect, make_user):
    """alice's sockets: two browser tabs of one session, another browser, and a bot token."""
    alice = await database_sync_to_async(make_user)("alice")
    first, cookie = await database_sync_to_async(signed_in_browser)(alice)
    _, other_cookie = await database_sync_to_async(signed_in_browser)(alice)
    tabs = [(await connect(headers=[(b"cookie", cookie)]))[0] for _ in range(2)]
    other, _ = await connect(headers=[(b"cookie", other_cookie)])
    bot, _ = await connect(user=alice)
    return alice, first, tabs, other, bot


async def still_open(client) -> None:
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["type"] == "pong"


async def test_logging_out_closes_that_sessions_sockets_only(sockets):
    _alice, browser, tabs, other, bot = sockets
    response = await database_sync_to_async(browser.post)("/accounts/logout/")
    assert response.status_code == 302
    for tab in tabs:
        await closed_with_4401(tab, "signed out")
    await still_open(other)
    await still_open(bot)


async def test_deactivating_a_user_closes_all_their_sockets(sockets):
    alice, _browser, tabs, other, bot = sockets

    def deactivate() -> None:
        alice.is_active = False
        alice.save()

    await database_sync_to_async(deactivate)()
    for client in (*tabs, other, bot):
        await closed_with_4401(client, "deactivated")


async def test_the_sweep_closes_what_a_lost_event_left_open(sockets):
    alice, browser, tabs, other, bot = sockets
    # Changed behind the signals' back: as if the layer had lost their events.
    await Session.objects.filter(session_key=browser.session.session_key).adelete()
    await sweep.sweep({})
    for tab in tabs:
        await closed_with_4401(tab, "signed out")
    await still_open(other)
    await get_user_model().objects.filter(pk=alice.pk).aupdate(is_active=False)
    await sweep.sweep({})
    for client in (other, bot):
        await closed_with_4401(client, "deactivated")


NEW_PASSWORD = "a-much-longer-Passw0rd"


async def test_a_password_change_closes_every_other_sessions_sockets_at_once(sockets, api):
    _alice, browser, tabs, other, bot = sockets
    form = {"old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    response = await database_sync_to_async(browser.post)("/accounts/password_change/", form)
    assert response.status_code == 302, response.content
    await closed_with_4401(other, "password was changed")
    # The session that changed it stays signed in (Django renamed it), and its
    # sockets with it, the sweep's check of its hash included; tokens outlive a change.
    await sweep.sweep({})
    for client in (*tabs, bot):
        await still_open(client)
    assert (await database_sync_to_async(browser.get)("/settings/")).status_code == 200


async def test_a_password_reset_closes_every_socket_and_revokes_the_tokens(sockets, api):
    from django.contrib.auth.tokens import default_token_generator
    from django.test import Client
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    alice, _browser, tabs, other, bot = sockets
    bot_api = await api(alice)
    assert (await bot_api("GET", "/rooms")).status_code == 200
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    token = await database_sync_to_async(default_token_generator.make_token)(alice)
    stranger = Client()
    link = await database_sync_to_async(stranger.get)(f"/accounts/reset/{uid}/{token}/")
    assert link.status_code == 302  # to the form, its token kept in the session
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    done = await database_sync_to_async(stranger.post)(link["Location"], form)
    assert done.status_code == 302 and done["Location"].endswith("/reset/done/")
    for client in (*tabs, other):
        await closed_with_4401(client, "password")
    await closed_with_4401(bot, "password was reset")
    assert (await bot_api("GET", "/rooms")).status_code == 401


async def test_the_sweep_closes_sessions_whose_password_changed_behind_its_back(sockets):
    alice, _browser, tabs, other, bot = sockets
    await get_user_model().objects.filter(pk=alice.pk).aupdate(password="changed-elsewhere")
    await sweep.sweep({})
    for client in (*tabs, other):
        await closed_with_4401(client, "password changed")
    await still_open(bot)

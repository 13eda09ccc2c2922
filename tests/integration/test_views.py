"""The HTML pages and the health check, through Django's test client."""

import pytest

from chat.services.rooms import room_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_lists_public_rooms_and_only_my_private_ones(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    room_create(slug="lobby", creator=alice, title="<b>Lobby</b>")
    room_create(slug="alices-den", creator=alice, private=True)
    room_create(slug="bobs-den", creator=bob, private=True)
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'data-room="lobby"' in page and 'data-room="alices-den"' in page
    assert "bobs-den" not in page
    assert "&lt;b&gt;Lobby&lt;/b&gt;" in page and "<b>Lobby</b>" not in page


def test_default_rooms_are_listed_before_they_exist(client, settings):
    settings.CHAT_DEFAULT_ROOMS = ["lobby", "help"]
    page = client.get("/").content.decode()
    assert 'data-room="lobby"' in page and 'data-room="help"' in page


def test_anonymous_visitors_get_the_guest_form_only_when_guests_are_on(client, settings):
    settings.CHAT_ALLOW_GUESTS = False
    assert 'id="guest-name"' not in client.get("/").content.decode()
    settings.CHAT_ALLOW_GUESTS = True
    assert 'id="guest-name"' in client.get("/").content.decode()


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b'name="password"' in response.content


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}

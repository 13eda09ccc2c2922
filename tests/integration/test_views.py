"""The HTML pages and the health check, through Django's test client."""

import pytest

from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_lists_public_rooms_and_only_my_private_ones(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    room_make(slug="lobby", creator=alice, title="<b>Lobby</b>")
    room_make(slug="alices-den", creator=alice, private=True)
    room_make(slug="bobs-den", creator=bob, private=True)
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


def test_healthz_names_each_check(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    redis = "ok" if settings.REDIS_URL else "not configured"  # CI sets REDIS_URL
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": redis}}


def test_readyz_is_503_once_the_process_is_stopping(client, monkeypatch):
    from chat.realtime import drain

    assert client.get("/readyz").status_code == 200
    monkeypatch.setattr(drain, "_draining", True)
    assert client.get("/readyz").json() == {"status": "stopping"}
    assert client.get("/readyz").status_code == 503


def test_metrics_answer_internal_addresses_and_the_token_only(client, settings):
    settings.CHAT_METRICS_TOKEN = "s3cret"
    assert b"chat_sockets_open" in client.get("/metrics", REMOTE_ADDR="10.0.0.5").content
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8").status_code == 404
    allowed = client.get(
        "/metrics", REMOTE_ADDR="8.8.8.8", headers={"Authorization": "Bearer s3cret"}
    )
    assert allowed.status_code == 200 and b"chat_messages_stored_total" in allowed.content
    wrong = client.get("/metrics", REMOTE_ADDR="8.8.8.8", headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 404


def test_sign_up_creates_and_signs_in_a_user(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert 'id="me">newbie<' in client.get("/").content.decode()


def test_sign_up_refuses_a_weak_password(client, django_user_model):
    response = client.post(
        "/accounts/signup/", {"username": "weak", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200 and not django_user_model.objects.filter(username="weak")


def test_create_a_private_room_and_invite_a_member(client, make_user):
    from chat.models import Membership, Room

    alice, bob = make_user("alice"), make_user("bob")
    client.force_login(alice)
    response = client.post("/rooms/new", {"slug": "den", "title": "The den", "private": "on"})
    assert response.status_code == 302 and response.url == "/#den"
    room = Room.objects.get(slug="den")
    assert (room.title, room.private) == ("The den", True)
    client.post("/rooms/den/invite", {"username": "bob"})
    assert Membership.objects.filter(room=room, user=bob, role="member").exists()


def test_only_owners_and_moderators_invite(client, make_user):
    from chat.models import Membership

    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    room = room_make(slug="den", creator=alice, private=True)
    member_make(room=room, user=bob)
    client.force_login(bob)
    response = client.post("/rooms/den/invite", {"username": "eve"}, follow=True)
    assert "only the room&#x27;s owner or a moderator may do this" in response.content.decode()
    assert not Membership.objects.filter(room=room, user=eve).exists()


def test_room_creation_validates_the_slug(client, make_user):
    from chat.models import Room

    client.force_login(make_user("alice"))
    client.post("/rooms/new", {"slug": "Bad Slug!"})
    assert list(Room.objects.values_list("slug", flat=True)) == ["lobby"]  # the site's own


def test_the_tokens_page_creates_shows_once_lists_and_revokes(client, make_user):
    from chat.models import ApiToken
    from chat.selectors.tokens import token_hash

    assert client.get("/settings/tokens").status_code == 302  # sign in first
    alice = make_user("alice")
    client.force_login(alice)
    page = client.post("/settings/tokens", {"name": "<b>bot</b>"}).content.decode()
    token = ApiToken.objects.get(user=alice)
    secret = page.split('<code id="new-token">')[1].split("</code>")[0]
    assert token_hash(secret) == token.key_hash
    assert "&lt;b&gt;bot&lt;/b&gt;" in page and "<b>bot</b>" not in page
    listed = client.get("/settings/tokens").content.decode()
    assert f'data-token="{token.pk}"' in listed and secret not in listed

    bob = make_user("bob")
    client.force_login(bob)
    client.post(f"/settings/tokens/{token.pk}/revoke")
    assert ApiToken.objects.filter(pk=token.pk).exists()  # not bob's to revoke
    client.force_login(alice)
    client.post(f"/settings/tokens/{token.pk}/revoke")
    assert not ApiToken.objects.exists()


def test_the_admin_shows_user_text_as_text(client, make_user):
    import uuid

    from chat.models import Message

    admin = make_user("root", is_staff=True, is_superuser=True)
    room = room_make(slug="lobby", creator=admin, title="<script>alert('title')</script>")
    message = Message.objects.create(
        room=room, seq=1, author_name="<b>guest</b>", body="<img src=x onerror=alert(1)>",
        client_id=uuid.uuid4(),
    )  # fmt: skip
    client.force_login(admin)
    pages = [
        client.get("/admin/chat/room/").content.decode(),
        client.get(f"/admin/chat/room/{room.pk}/change/").content.decode(),
        client.get("/admin/chat/message/").content.decode(),
        client.get(f"/admin/chat/message/{message.pk}/change/").content.decode(),
    ]
    everything = "".join(pages)
    assert "<script>alert('title')</script>" not in everything
    assert "<img src=x onerror" not in everything and "<b>guest</b>" not in everything
    assert "&lt;script&gt;" in everything and "&lt;img src=x onerror" in everything

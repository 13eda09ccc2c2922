"""Moderation: who may act on whom (the actor x action matrix), what each action
does to the target's sockets and rights, and the audit log."""

import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.models import Membership, Message, ModerationLog, Room, Sanction
from chat.realtime import sweep
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)

ACTORS = ["owner", "moderator", "member", "guest"]
ACTIONS = ["kick", "ban", "unban", "mute", "unmute", "promote", "demote", "delete"]
# What the server answers each actor for each action on a plain member
# (its message, for delete): "ok", or the error code of the refusal.
MATRIX = {
    "owner": dict.fromkeys(ACTIONS, "ok"),
    "moderator": dict.fromkeys(ACTIONS, "ok") | {"promote": "forbidden", "demote": "forbidden"},
    "member": dict.fromkeys(ACTIONS, "forbidden"),
    "guest": dict.fromkeys(ACTIONS, "forbidden"),
}


@pytest.fixture
async def club(make_user, settings):
    """A public room: its owner, a moderator, and two members (mel is the target)."""
    settings.CHAT_ALLOW_GUESTS = True

    def setup() -> dict:
        users = {name: make_user(name) for name in ("owner", "moderator", "member", "mel")}
        club = room_make(slug="club", creator=users["owner"])
        member_make(room=club, user=users["moderator"], role=Membership.Role.MODERATOR)
        member_make(room=club, user=users["member"])
        member_make(room=club, user=users["mel"])
        return users

    return await database_sync_to_async(setup)()


def moderate(action, user="mel", **fields):
    return {"type": "moderate", "room": "club", "action": action, "user": user, **fields}


async def answer(client, frame):
    """Send a frame; the `moderated` event, `ack` or `error` that answers it."""
    await client.send(frame)
    while (got := await client.recv())["type"] not in ("moderated", "ack", "error"):
        pass
    return got


async def removed(client, room: str = "club") -> str:
    """The reason of the `left` that takes the client out, passing over the
    room's `moderated` (which may come before it, or not at all after it)."""
    while (got := await client.recv())["type"] == "moderated":
        pass
    assert got["type"] == "left", got
    assert got["room"] == room
    return got["reason"]


async def state(mel) -> tuple:
    """What moderation can change about mel in the club."""
    role = await Membership.objects.filter(user=mel, room__slug="club").values_list(
        "role", flat=True
    ).afirst()  # fmt: skip
    kinds = sorted([s.kind async for s in Sanction.objects.filter(user=mel)])
    deleted = await Message.objects.filter(seq=1, deleted=True).aexists()
    return role, kinds, deleted


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor", ACTORS)
async def test_who_may_moderate(club, connect, actor, action):
    target, _ = await connect(user=club["mel"])
    await target.join("club")
    await target.say("club", "hello")
    before = {"unban": "ban", "unmute": "mute"}.get(action)
    if before:
        await Sanction.objects.acreate(
            room=await Room.objects.aget(slug="club"), user=club["mel"], kind=before
        )
    if action == "demote":
        await Membership.objects.filter(user=club["mel"]).aupdate(role="moderator")
    initial = await state(club["mel"])

    client, _ = await connect(user=club.get(actor), path="/ws/chat/?name=gus")
    await client.join("club")
    if action == "delete":
        frame = {"type": "delete", "room": "club", "seq": 1, "client_id": str(uuid.uuid4())}
    else:
        frame = moderate(action)
    got = await answer(client, frame)

    expected = MATRIX[actor][action]
    if expected != "ok":
        assert (got["type"], got["code"]) == ("error", expected), got
        assert await state(club["mel"]) == initial
        assert await ModerationLog.objects.acount() == 0
        return
    assert got["type"] == ("ack" if action == "delete" else "moderated"), got
    role, kinds, deleted = await state(club["mel"])
    assert {
        "kick": role == "member",  # a public room: they may come back
        "ban": role is None and kinds == ["ban"],
        "unban": kinds == [],
        "mute": kinds == ["mute"],
        "unmute": kinds == [],
        "promote": role == "moderator",
        "demote": role == "member",
        "delete": deleted,
    }[action], (role, kinds, deleted)
    log = await ModerationLog.objects.aget()
    assert (log.action, log.actor_name, log.target_name) == (action, actor, "mel")
    if action in ("kick", "ban"):
        assert await removed(target) == action


@pytest.mark.parametrize(
    ("actor", "frame", "code"),
    [
        ("moderator", moderate("ban", "owner"), "forbidden"),
        ("moderator", moderate("mute", "moderator2"), "forbidden"),
        ("owner", moderate("kick", "owner"), "bad_request"),
        ("moderator", moderate("kick", "moderator"), "bad_request"),
        ("owner", moderate("ban", "nobody"), "not_found"),
        ("owner", moderate("kick", minutes=5), "bad_request"),
        ("owner", moderate("ban", minutes=0), "bad_request"),
        ("owner", moderate("promote", "outsider"), "not_found"),
    ],
)
async def test_moderators_cannot_act_on_the_owner_or_each_other(
    club, connect, make_user, actor, frame, code
):
    def more():
        mod2, _ = make_user("moderator2"), make_user("outsider")
        Membership.objects.create(room=Room.objects.get(slug="club"), user=mod2, role="moderator")

    await database_sync_to_async(more)()
    client, _ = await connect(user=club[actor])
    await client.join("club")
    got = await answer(client, frame)
    assert (got["type"], got["code"]) == ("error", code), got
    assert await ModerationLog.objects.acount() == 0
    assert await Sanction.objects.acount() == 0


async def test_the_owner_may_ban_a_moderator(club, connect):
    client, _ = await connect(user=club["owner"])
    await client.join("club")
    got = await answer(client, moderate("ban", "moderator", minutes=60, reason="spam"))
    assert (got["action"], got["user"], got["by"], got["reason"]) == (
        "ban", "moderator", "owner", "spam"
    )  # fmt: skip
    until = timezone.now() + timedelta(minutes=60)
    assert abs((await Sanction.objects.aget()).until - until) < timedelta(seconds=30)


async def test_a_private_room_kick_takes_the_membership(club, connect):
    await Room.objects.filter(slug="club").aupdate(private=True)
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    owner, _ = await connect(user=club["owner"])
    await owner.join("club")
    await answer(owner, moderate("kick"))
    assert await removed(mel) == "kick"
    await owner.say("club", "after the kick")
    assert await mel.nothing()
    await mel.send({"type": "join", "room": "club"})
    assert (await mel.expect("error"))["code"] == "not_found"
    assert not await Membership.objects.filter(user=club["mel"]).aexists()


async def test_a_ban_keeps_the_user_out_until_it_ends(club, connect, api):
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    owner, _ = await connect(user=club["owner"])
    await owner.join("club")
    seen = await answer(owner, moderate("ban", minutes=10, reason="flooding"))
    assert seen["until"] is not None
    assert await removed(mel) == "ban"
    await mel.send({"type": "join", "room": "club"})
    error = await mel.expect("error")
    assert error["code"] == "forbidden"
    assert "banned from room 'club' until" in error["detail"] and "flooding" in error["detail"]
    http = await api(club["mel"])
    refused = await http("GET", "/rooms/club/messages")
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    posted = await http("POST", "/rooms/club/messages",
                        {"body": "let me in", "client_id": str(uuid.uuid4())})  # fmt: skip
    assert posted.status_code == 403
    assert await Message.objects.acount() == 0

    # Ten minutes later (the ban's end moved into the past): welcome back.
    ban = await Sanction.objects.aget()
    ban.until = timezone.now() - timedelta(seconds=1)
    await ban.asave()
    await mel.join("club")
    await mel.say("club", "back")


async def test_a_muted_user_reads_but_cannot_write_until_unmuted(club, connect):
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    await mel.say("club", "before")
    owner, _ = await connect(user=club["owner"])
    await owner.join("club")
    await answer(owner, moderate("mute"))
    assert (await mel.expect("moderated"))["action"] == "mute"
    for frame in [
        {"type": "send", "room": "club", "body": "hi", "client_id": str(uuid.uuid4())},
        {"type": "edit", "room": "club", "seq": 1, "body": "x", "client_id": str(uuid.uuid4())},
        {"type": "react", "room": "club", "seq": 1, "emoji": "👍", "on": True,
         "client_id": str(uuid.uuid4())},
    ]:  # fmt: skip
        error = await answer(mel, frame)
        assert (error["code"], error["ref"]) == ("forbidden", frame["client_id"])
        assert "muted in room 'club' until lifted" in error["detail"]
    await owner.say("club", "still reading?")
    assert (await mel.expect("message"))["body"] == "still reading?"
    await answer(owner, moderate("unmute"))
    assert (await mel.expect("moderated"))["action"] == "unmute"
    await mel.say("club", "yes")
    assert await Message.objects.acount() == 3


async def test_the_sweep_takes_a_banned_user_out_when_the_event_was_lost(club, connect):
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    # Written without the service: no event reaches the socket, as if the layer lost it.
    await Sanction.objects.acreate(
        room=await Room.objects.aget(slug="club"), user=club["mel"], kind="ban"
    )
    await sweep.sweep({})
    assert await removed(mel) == "ban"


async def test_a_member_removed_over_http_leaves_at_once(club, connect, api):
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    http = await api(club["moderator"])
    assert (await http("DELETE", "/rooms/club/members/mel")).status_code == 204
    assert await removed(mel) == "removed"
    log = await ModerationLog.objects.aget()
    assert (log.action, log.actor_name, log.target_name) == ("kick", "moderator", "mel")


async def test_moderation_over_http_and_the_audit_log(club, connect, api):
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    await mel.say("club", "spam spam")
    http = await api(club["moderator"])
    mute = {"action": "mute", "user": "mel", "minutes": 30, "reason": "spam"}
    done = await http("POST", "/rooms/club/moderation", mute)
    assert done.status_code == 200, done.text
    assert done.json()["action"] == "mute"
    assert (await mel.expect("moderated"))["by"] == "moderator"
    await mel.send({"type": "delete", "room": "club", "seq": 1, "client_id": str(uuid.uuid4())})
    assert (await mel.expect("error"))["code"] == "forbidden"  # muted: not even their own

    moderator, _ = await connect(user=club["moderator"])
    await moderator.join("club")
    await answer(moderator, {"type": "delete", "room": "club", "seq": 1,
                             "client_id": str(uuid.uuid4())})  # fmt: skip
    log = (await http("GET", "/rooms/club/moderation")).json()
    assert [(e["action"], e["actor"], e["target"], e["seq"]) for e in log] == [
        ("delete", "moderator", "mel", 1),
        ("mute", "moderator", "mel", None),
    ]
    assert log[1]["reason"] == "spam" and log[1]["until"] is not None
    member = await api(club["member"])
    assert (await member("GET", "/rooms/club/moderation")).status_code == 403
    bad = await http("POST", "/rooms/club/moderation", {"action": "smite", "user": "mel"})
    assert (bad.status_code, bad.json()["code"]) == (400, "bad_request")


async def test_moderation_draws_on_the_send_rate(club, connect, settings):
    settings.CHAT_SEND_BURST = 1
    owner, _ = await connect(user=club["owner"])
    await owner.join("club")
    await answer(owner, moderate("mute"))
    got = await answer(owner, moderate("unmute"))
    assert (got["type"], got["code"]) == ("error", "rate_limited")
    assert await ModerationLog.objects.acount() == 1


def test_the_admin_lists_sanctions_and_keeps_the_log_read_only(club, client, make_user):
    root = make_user("root", is_staff=True, is_superuser=True)
    room = Room.objects.get(slug="club")
    Sanction.objects.create(room=room, user=club["mel"], kind="ban", reason="<b>spam</b>")
    entry = ModerationLog.objects.create(
        room=room, room_slug="club", actor_name="owner", action="ban", target_name="mel"
    )
    client.force_login(root)
    sanctions = client.get("/admin/chat/sanction/").content.decode()
    assert "mel" in sanctions and "&lt;b&gt;spam&lt;/b&gt;" in sanctions
    assert client.get("/admin/chat/moderationlog/").status_code == 200
    assert client.get("/admin/chat/moderationlog/add/").status_code == 403
    assert (
        client.post(f"/admin/chat/moderationlog/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert ModerationLog.objects.count() == 1


async def test_guests_read_but_cannot_write_where_the_room_says_so(club, connect, api):
    assert (await (await api(club["member"]))(
        "PATCH", "/rooms/club", {"guests_can_write": False}
    )).status_code == 403  # fmt: skip
    changed = await (await api(club["moderator"]))(
        "PATCH", "/rooms/club", {"guests_can_write": False}
    )
    assert (changed.status_code, changed.json()["guests_can_write"]) == (200, False)
    guest, _ = await connect(path="/ws/chat/?name=gus")
    assert (await guest.join("club"))["guests_can_write"] is False
    send = {"type": "send", "room": "club", "body": "hi", "client_id": str(uuid.uuid4())}
    for frame in [send, {"type": "typing", "room": "club"}]:
        error = await answer(guest, frame)
        assert (error["code"], error["detail"]) == ("forbidden", "sign in to write in room 'club'")
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    await mel.say("club", "members still write")
    assert (await guest.expect("message"))["body"] == "members still write"

    await (await api(club["owner"]))("PATCH", "/rooms/club", {"guests_can_write": True})
    await guest.say("club", "thanks", send["client_id"])
    assert [m.body async for m in Message.objects.order_by("seq")] == [
        "members still write", "thanks"
    ]  # fmt: skip


async def test_a_muted_member_cannot_type_and_typing_is_rated_per_socket(club, connect):
    listener, _ = await connect(user=club["member"])
    await listener.join("club")
    typist, _ = await connect(user=club["moderator"])
    await typist.join("club")
    for _ in range(20):
        await typist.send({"type": "typing", "room": "club"})
    await typist.send({"type": "ping"})
    await typist.expect("pong")  # every typing frame before it was handled
    assert (await listener.expect("typing"))["user"]["name"] == "moderator"
    assert await listener.nothing(), "one notice a few seconds, the rest dropped"

    owner, _ = await connect(user=club["owner"])
    await owner.join("club")
    await answer(owner, moderate("mute"))
    assert (await listener.expect("moderated"))["action"] == "mute"
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")
    error = await answer(mel, {"type": "typing", "room": "club"})
    assert (error["code"], error["ref"]) == ("forbidden", "typing")
    assert "muted" in error["detail"]
    assert await listener.nothing()


async def test_a_ban_or_removal_made_in_the_admin_acts_at_once(club, connect, make_user, settings):
    settings.CHAT_SWEEP_SECONDS = 3600  # so only the change's own notice can take them out
    mel, _ = await connect(user=club["mel"])
    await mel.join("club")

    def ban_in_the_admin() -> None:
        from django.test import Client

        admin = make_user("admin", is_staff=True, is_superuser=True)
        browser = Client()
        browser.force_login(admin)
        room = Room.objects.get(slug="club")
        response = browser.post(
            "/admin/chat/sanction/add/",
            {"room": room.pk, "user": club["mel"].pk, "kind": "ban", "reason": "spam"},
        )
        assert response.status_code == 302, response.content.decode()[-2000:]

    await database_sync_to_async(ban_in_the_admin)()
    assert await removed(mel) == "ban"  # at once: no sweep ran

    # A member of a private room taken out by any ORM delete leaves at once too.
    def private_room() -> None:
        room = room_make(slug="den", creator=club["owner"], private=True)
        member_make(room=room, user=club["member"])

    await database_sync_to_async(private_room)()
    member, _ = await connect(user=club["member"])
    await member.join("den")
    await Membership.objects.filter(room__slug="den", user=club["member"]).adelete()
    assert await removed(member, "den") == "removed"


async def test_the_sites_rooms_belong_to_no_user_and_staff_moderate_them(connect, make_user):
    def users():
        return make_user("first"), make_user("second"), make_user("staff", is_staff=True)

    first, second, staff = await database_sync_to_async(users)()
    a, _ = await connect(user=first)
    await a.join("lobby")  # the first to join owns nothing
    b, _ = await connect(user=second)
    await b.join("lobby")
    refused = await answer(a, {**moderate("ban", user="second"), "room": "lobby"})
    assert refused["code"] == "forbidden"
    api_first = await Membership.objects.aget(room__slug="lobby", user=first)
    assert api_first.role == "member"

    s, _ = await connect(user=staff)
    await s.join("lobby")
    promoted = await answer(s, {**moderate("promote", user="first"), "room": "lobby"})
    assert promoted["type"] == "moderated"
    banned = await answer(a, {**moderate("ban", user="second"), "room": "lobby"})
    assert banned["type"] == "moderated"  # a moderator appointed by staff
    assert await removed(b, "lobby") == "ban"

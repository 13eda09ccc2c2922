"""Room exports and a user's own data: built by the export task (in-process
here, as without a broker), with progress on the requester's sockets, and
downloadable by the requester only until they expire."""

import io
import json
import os
import uuid
import zipfile
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from chat import tasks
from chat.actor import Actor
from chat.models import Attachment, Export, Message, ModerationLog, Room
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = 10_000


@pytest.fixture
async def big(make_user, media):
    """alice's private room `big` of 10,000 messages (one with a file), with
    bob as a member; carol is not one; staff is site staff."""

    def make():
        alice, bob = make_user("alice"), make_user("bob")
        carol, staff = make_user("carol"), make_user("staff", is_staff=True)
        room = room_make(slug="big", creator=alice, title="The <big> room", private=True)
        member_make(room=room, user=bob)
        attachment = Attachment.objects.create(
            room=room, uploader=alice, name="notes.txt", content_type="text/plain", size=5,
            attached=True,
        )  # fmt: skip
        attachment.file.save("notes.txt", ContentFile(b"notes"))
        Message.objects.bulk_create(
            Message(
                room=room, seq=seq, author=alice if seq % 2 else bob,
                author_name="alice" if seq % 2 else "bob", client_id=uuid.uuid4(),
                body="<script>x</script>" if seq == 1 else f"message {seq}",
                attachment=attachment if seq == 2 else None,
            )
            for seq in range(1, MESSAGES + 1)
        )  # fmt: skip
        Room.objects.filter(pk=room.pk).update(last_seq=MESSAGES)
        return alice, bob, carol, staff

    return await database_sync_to_async(make)()


async def finished(client) -> list[dict]:
    """The `export` frames a socket gets, up to the last (done or failed)."""
    frames = [await client.expect("export", timeout=60)]
    while frames[-1]["state"] not in ("done", "failed"):
        frames.append(await client.expect("export", timeout=60))
    return frames


async def download(http, url: str) -> zipfile.ZipFile:
    response = await http.http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


async def test_a_10000_message_room_is_exported_with_progress_for_its_owner_only(big, api, connect):
    alice, bob, carol, staff = big
    socket, _ = await connect(user=alice)
    as_alice = await api(alice)
    started = await as_alice("POST", "/rooms/big/exports")
    assert started.status_code == 202, started.text
    assert started.json()["room"] == "big" and started.json()["url"] is None

    frames = await finished(socket)
    assert frames[-1]["state"] == "done" and frames[-1]["total"] == MESSAGES
    progress = [f["done"] for f in frames if f["state"] == "running"]
    assert progress == sorted(progress) and len(progress) >= 10  # batch by batch
    status = (await as_alice("GET", f"/exports/{started.json()['id']}")).json()
    assert status == {**frames[-1], "expires": status["expires"]}  # the API's time is in ms

    archive = await download(as_alice, status["url"])
    entries = json.loads(archive.read("messages.json"))
    assert [e["seq"] for e in entries] == list(range(1, MESSAGES + 1))
    assert entries[1]["attachment"].endswith("-notes.txt") and entries[1]["author"] == "bob"
    assert archive.read(entries[1]["attachment"]) == b"notes"
    page = archive.read("index.html").decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert "The &lt;big&gt; room" in page and "message 10000" in page

    # Not the owner: a member is refused; to a non-member the room does not
    # exist, site staff included (without the permission to export any
    # room); and an export is nobody's but its requester's.
    for user, status_code in ((bob, 403), (carol, 404), (staff, 404)):
        other = await api(user)
        assert (await other("POST", "/rooms/big/exports")).status_code == status_code
        assert (await other("GET", f"/exports/{status['id']}")).status_code == 404
        assert (await other.http.get(status["url"])).status_code == 404


async def test_a_user_exports_everything_they_wrote_with_their_account(big, api, connect):
    _, bob, _, _ = big

    def elsewhere():
        room = room_make(slug="elsewhere", creator=bob)
        Message.objects.create(room=room, seq=1, author=bob, author_name="bob", body="mine too",
                               client_id=uuid.uuid4())  # fmt: skip

    await database_sync_to_async(elsewhere)()
    socket, _ = await connect(user=bob)
    as_bob = await api(bob)
    started = await as_bob("POST", "/exports")
    assert started.status_code == 202 and started.json()["room"] is None
    done = (await finished(socket))[-1]
    archive = await download(as_bob, done["url"])
    entries = json.loads(archive.read("messages.json"))
    assert len(entries) == MESSAGES // 2 + 1 and {e["author"] for e in entries} == {"bob"}
    assert entries[-1] == {**entries[-1], "room": "elsewhere", "body": "mine too"}
    account = json.loads(archive.read("account.json"))
    assert account["username"] == "bob"
    assert {r["room"] for r in account["rooms"]} == {"big", "elsewhere"}


async def test_one_export_at_a_time_and_expired_ones_are_removed(big, api, media):
    alice, *_ = big
    as_alice = await api(alice)
    queued = await Export.objects.acreate(
        id=uuid.uuid4(), requester=alice, room=await Room.objects.aget(slug="big"),
        expires=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    again = await as_alice("POST", "/rooms/big/exports")
    assert again.json()["id"] == str(queued.pk)  # the one waiting, not a second

    await Export.objects.filter(pk=queued.pk).aupdate(state="done")
    await database_sync_to_async(lambda: queued.file.save("exports/x.zip", ContentFile(b"zip")))()
    await Export.objects.filter(pk=queued.pk).aupdate(expires=timezone.now() - timedelta(seconds=1))
    assert (await as_alice("GET", f"/exports/{queued.pk}/file")).status_code == 404
    await database_sync_to_async(tasks.exports_expire.apply)()
    assert not await Export.objects.filter(pk=queued.pk).aexists()
    assert not default_storage.exists(queued.file.name)


@pytest.fixture
async def den(make_user, media):
    """alice's room `den`, holding one message with a 9 KiB attachment; bob's
    room `hall`; staff (no permissions) and an auditor (may export any room)."""

    def make():
        from django.contrib.auth.models import Permission

        alice, bob = make_user("alice"), make_user("bob")
        staff, auditor = make_user("staff", is_staff=True), make_user("auditor", is_staff=True)
        auditor.user_permissions.add(Permission.objects.get(codename="export_any_room"))
        room = room_make(slug="den", creator=alice)
        room_make(slug="hall", creator=bob)
        attachment = Attachment.objects.create(
            room=room, uploader=alice, name="big.txt", content_type="text/plain",
            size=9 * 1024, attached=True,
        )  # fmt: skip
        attachment.file.save("big.txt", ContentFile(os.urandom(9 * 1024)))  # no compressing it
        Message.objects.create(room=room, seq=1, author=alice, author_name="alice", body="hi",
                               client_id=uuid.uuid4(), attachment=attachment)  # fmt: skip
        Room.objects.filter(pk=room.pk).update(last_seq=1)
        return alice, bob, staff, auditor

    return await database_sync_to_async(make)()


async def test_exports_are_limited_per_user_per_room_by_rate_and_by_size(
    den, api, connect, settings
):
    alice, bob, _, auditor = den
    # Stored zips count against the user's allowance, until deleted (or expired).
    settings.CHAT_EXPORT_MAX_BYTES = 25 * 1024
    socket, _ = await connect(user=alice)
    as_alice = await api(alice)
    for _ in range(2):
        assert (await as_alice("POST", "/rooms/den/exports")).status_code == 202
        assert (await finished(socket))[-1]["state"] == "done"
    assert [e.size async for e in Export.objects.all()] == [pytest.approx(9 * 1024, rel=0.2)] * 2
    refused = await as_alice("POST", "/rooms/den/exports")
    assert refused.status_code == 413 and refused.json()["code"] == "too_large"
    assert refused.json()["retry_after"] > 6 * 86400  # when the first one expires
    oldest = await Export.objects.order_by("created").afirst()
    assert (await as_alice("DELETE", f"/exports/{oldest.pk}")).status_code == 204
    assert not default_storage.exists(oldest.file.name)
    assert (await as_alice("POST", "/rooms/den/exports")).status_code == 202
    await finished(socket)

    # So many asked for in a while, whatever became of them.
    settings.CHAT_EXPORTS_BURST = 2
    bob_socket, _ = await connect(user=bob)
    as_bob = await api(bob)
    for _ in range(2):
        assert (await as_bob("POST", "/rooms/hall/exports")).status_code == 202
        await finished(bob_socket)
    third = await as_bob("POST", "/rooms/hall/exports")
    assert third.status_code == 429 and third.json()["code"] == "rate_limited"
    assert third.json()["retry_after"] > 0

    # One export being built per room, whoever asks, and per user, whatever room.
    running = await Export.objects.acreate(
        id=uuid.uuid4(), requester=auditor, room=await Room.objects.aget(slug="den"),
        state="running", claimed_until=timezone.now() + timedelta(seconds=30),
        expires=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    busy = await as_alice("POST", "/rooms/den/exports")
    assert busy.status_code == 429 and 5 <= busy.json()["retry_after"] <= 31
    again = await (await api(auditor))("POST", "/rooms/den/exports")
    assert again.json()["id"] == str(running.pk)  # their own, not a second
    elsewhere = await (await api(auditor))("POST", "/rooms/hall/exports")
    assert elsewhere.status_code == 429 and "one export at a time" in elsewhere.json()["detail"]


async def test_a_dm_is_exported_only_by_the_permission_and_that_is_audited(den, api, client):
    from chat.services.dms import dm_send

    _alice, bob, staff, auditor = den
    ack = await dm_send(
        actor=Actor(name="bob", user=bob), usernames=["alice"], body="a secret",
        client_id=uuid.uuid4(),
    )  # fmt: skip
    as_staff = await api(staff)
    assert (await as_staff("GET", f"/rooms/{ack.room}/messages")).status_code == 404
    assert (await as_staff("POST", f"/rooms/{ack.room}/exports")).status_code == 404
    assert (await (await api(bob))("POST", f"/rooms/{ack.room}/exports")).status_code == 403
    assert not await ModerationLog.objects.aexists()

    started = await (await api(auditor))("POST", f"/rooms/{ack.room}/exports")
    assert started.status_code == 202, started.text
    entry = await ModerationLog.objects.aget()
    assert (entry.action, entry.actor_name, entry.room_slug) == ("export", "auditor", ack.room)

    def admin_page() -> str:
        superuser = type(staff).objects.create_superuser("root", password="pw")
        client.force_login(superuser)
        return client.get("/admin/chat/moderationlog/").content.decode()

    page = await database_sync_to_async(admin_page)()
    assert "auditor" in page and "Export" in page

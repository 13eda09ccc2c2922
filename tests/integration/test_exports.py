"""Room exports and a user's own data: built by the export task (in-process
here, as without a broker), with progress on the requester's sockets, and
downloadable by the requester only until they expire."""

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from chat import tasks
from chat.models import Attachment, Export, Message, Room
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

    # Not the owner: a member is refused; to a non-member the room does not exist;
    # and an export is nobody's but its requester's.
    for user, status_code in ((bob, 403), (carol, 404)):
        other = await api(user)
        assert (await other("POST", "/rooms/big/exports")).status_code == status_code
        assert (await other("GET", f"/exports/{status['id']}")).status_code == 404
        assert (await other.http.get(status["url"])).status_code == 404
    assert (await (await api(staff))("POST", "/rooms/big/exports")).status_code == 202


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

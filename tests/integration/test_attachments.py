"""Attachments over HTTP: uploads typed and capped, sent with a message, and
served only to those who may read the room."""

import asyncio
import io
import struct
import uuid
import zipfile
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from PIL import Image

from chat import taskqueue
from chat.models import Attachment, Message, Room, Sanction
from chat.services.attachments import attachments_prune
from chat.services.messages import messages_expire
from chat.services.rooms import room_create
from tests.conftest import TIMEOUT
from tests.factories import member_make, room_make

pytestmark = pytest.mark.django_db(transaction=True)


def image(kind="PNG", size=(8, 6), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, kind, **save)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG that claims this size: enough to open, nothing to decode."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


PNG = image()


@pytest.fixture
async def den(make_user):
    """alice's private den, with bob in it; dave is not."""

    def setup():
        alice, bob, dave = make_user("alice"), make_user("bob"), make_user("dave")
        member_make(room=room_make(slug="den", creator=alice, private=True), user=bob)
        return alice, bob, dave

    return await database_sync_to_async(setup)()


def stored(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


async def upload(http, name, data, room="den"):
    return await http("POST", f"/rooms/{room}/attachments", files={"file": (name, data)})


async def post(http, body, attachment, room="den"):
    payload = {"body": body, "client_id": str(uuid.uuid4()), "attachment": attachment}
    return await http("POST", f"/rooms/{room}/messages", payload)


async def test_an_image_is_sent_with_a_message_and_served_to_members_only(den, media, api, connect):
    alice, bob, dave = den
    as_bob = await api(bob)
    made = await upload(as_bob, "../../holiday photo.png", PNG)
    assert made.status_code == 201, made.text
    attachment = made.json()
    assert {k: attachment[k] for k in ("name", "content_type", "size", "image", "width")} == {
        "name": "holiday photo.png", "content_type": "image/png", "size": len(PNG), "image": True,
        "width": 8,
    }  # fmt: skip
    assert attachment["url"] == f"/attachments/{attachment['id']}/holiday%20photo.png"
    original, thumbnail = sorted(stored(media), key=lambda p: p.suffix)
    assert original.suffix == ".png" and "holiday" not in original.name  # a random name
    assert thumbnail.name.endswith(".thumb.webp")
    assert attachment["thumbnail_url"] == attachment["url"] + "?thumbnail"

    a, _ = await connect(user=alice)
    await a.join("den")
    assert (await post(as_bob, "look", attachment["id"])).status_code == 201
    seen = await a.expect("message")
    assert seen["attachment"] == attachment

    got = await as_bob.http.get(attachment["url"])
    assert (got.status_code, got.content) == (200, PNG)
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in got.headers["content-security-policy"]
    as_dave = await api(dave)
    assert (await as_dave.http.get(attachment["url"])).status_code == 404  # private: not there
    anonymous = await api()
    assert (await anonymous.http.get(attachment["url"])).status_code == 401
    assert (await as_bob.http.get(attachment["url"] + "x")).status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("run.exe", b"MZ\x90\x00\x03\x00\x00\x00", "bad_request"),
        ("fake.png", b"\x00\x00\x00\x00 not an image", "bad_request"),
        ("empty.txt", b"", "bad_request"),
        ("big.txt", b"x" * 5000, "too_large"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "bad_request"),
        ("bomb.png", png_header(20_000, 20_000), "bad_request"),
    ],
)
async def test_files_of_other_types_or_too_big_are_refused(
    den, media, api, settings, name, data, code
):
    settings.CHAT_MAX_UPLOAD_BYTES = 4000
    _, bob, _ = den
    refused = await upload(await api(bob), name, data)
    assert refused.json()["code"] == code, refused.text
    assert stored(media) == [] and await Attachment.objects.acount() == 0


async def test_a_thumbnail_is_small_upright_webp_without_the_photos_metadata(den, media, api):
    _, bob, _ = den
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show rotated by 90 degrees
    exif[0x8825] = {2: (48.0, 51.0, 24.0)}  # where the photo was taken
    photo = image("JPEG", size=(2000, 1000), exif=exif.tobytes())
    as_bob = await api(bob)
    made = (await upload(as_bob, "photo.jpg", photo)).json()
    assert (made["content_type"], made["width"], made["height"]) == ("image/jpeg", 2000, 1000)
    got = await as_bob.http.get(made["thumbnail_url"])
    assert got.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(got.content)) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (180, 360)  # upright, in 480 x 360
        assert not thumb.getexif()
    assert (await as_bob.http.get(made["url"])).content == photo  # the original, as sent


async def test_text_is_served_as_a_download_whatever_it_holds(den, media, api):
    _, bob, _ = den
    as_bob = await api(bob)
    made = (await upload(as_bob, "page.html", b"<script>alert(1)</script>")).json()
    assert made["content_type"] == "text/plain" and made["image"] is False
    got = await as_bob.http.get(made["url"])
    assert got.headers["content-type"].startswith("text/plain")
    assert got.headers["content-disposition"].startswith("attachment;")


async def test_active_file_names_are_neutralised_in_downloads_and_exports(den, media, api, connect):
    alice, bob, _ = den
    as_bob = await api(bob)
    for name, served in (
        ("x.html", "x.html.txt"),
        ("x.svg", "x.svg.txt"),
        ("notes.md", "notes.md"),
        ("photo.png.html", "photo.png.html.txt"),
    ):
        made = (await upload(as_bob, name, b"<svg onload=alert(1)><script>x</script>")).json()
        assert made["name"] == served
        got = await as_bob.http.get(made["url"])
        assert got.headers["content-disposition"].endswith(f"''{served}"), got.headers
        await post(as_bob, name, made["id"])
    # An upload stored before this rule keeps its name, and is offered safely.
    old = await Attachment.objects.filter(name="x.html.txt").aupdate(name="x.html")
    assert old == 1
    attachment = await Attachment.objects.aget(name="x.html")
    got = await as_bob.http.get(f"/attachments/{attachment.pk}/x.html")
    assert got.headers["content-disposition"].endswith("''x.html.txt")

    owner, _ = await connect(user=alice)
    started = await (await api(alice))("POST", "/rooms/den/exports")
    assert started.status_code == 202, started.text
    while (done := await owner.expect("export", timeout=30))["state"] != "done":
        pass
    archive = zipfile.ZipFile(io.BytesIO((await (await api(alice)).http.get(done["url"])).content))
    files = [n for n in archive.namelist() if n.startswith("attachments/")]
    assert files and all(n.endswith((".txt", ".md")) for n in files), files
    page = archive.read("index.html").decode()
    assert f'href="attachments/{attachment.pk}-x.html.txt"' in page


async def test_an_upload_goes_with_one_message_of_its_uploader_in_its_room(den, media, api):
    alice, bob, _ = den
    as_bob, as_alice = await api(bob), await api(alice)
    mine = (await upload(as_bob, "a.png", PNG)).json()["id"]
    # Until sent, only its uploader sees it.
    url = f"/attachments/{mine}/a.png"
    assert (await as_alice.http.get(url)).status_code == 404
    assert (await post(as_alice, "steal", mine)).json()["code"] == "bad_request"
    await room_create(slug="hall", creator=bob)
    assert (await post(as_bob, "elsewhere", mine, room="hall")).json()["code"] == "bad_request"
    assert (await post(as_bob, "here", mine)).status_code == 201
    assert (await post(as_bob, "again", mine)).json()["code"] == "bad_request"
    assert (await as_alice.http.get(url)).status_code == 200


async def test_deleting_the_message_deletes_the_file(den, media, api, connect):
    _, bob, _ = den
    as_bob = await api(bob)
    made = (await upload(as_bob, "a.png", PNG)).json()
    ack = (await post(as_bob, "oops", made["id"])).json()
    b, _ = await connect(user=bob)
    await b.join("den")
    await b.send(
        {"type": "delete", "room": "den", "seq": ack["seq"], "client_id": str(uuid.uuid4())}
    )
    while (await b.recv())["type"] != "ack":
        pass
    assert stored(media) == [] and await Attachment.objects.acount() == 0
    assert (await as_bob.http.get(made["url"])).status_code == 404


async def test_who_may_upload(den, media, api):
    _, bob, dave = den
    assert (await upload(await api(dave), "a.png", PNG)).status_code == 404  # private: not there
    assert (await upload(await api(), "a.png", PNG)).status_code == 401
    room = await Room.objects.aget(slug="den")
    await Sanction.objects.acreate(room=room, user=bob, kind=Sanction.Kind.MUTE)
    muted = await upload(await api(bob), "a.png", PNG)
    assert (muted.status_code, "muted" in muted.json()["detail"]) == (403, True)
    assert stored(media) == []


async def test_retention_erases_old_messages_and_their_files(den, media, api):
    _, bob, _ = den
    as_bob = await api(bob)
    made = (await upload(as_bob, "old.png", PNG)).json()
    await post(as_bob, "an old picture", made["id"])
    await post(as_bob, "a new one", None)
    await Message.objects.filter(body="an old picture").aupdate(
        created=timezone.now() - timedelta(days=31)
    )
    assert await messages_expire(older_than=timedelta(days=30)) == 1
    assert stored(media) == [] and await Attachment.objects.acount() == 0
    kept = [(m.body, m.deleted) async for m in Message.objects.order_by("seq")]
    assert kept == [("", True), ("a new one", False)]


async def test_deleting_an_upload_in_the_admin_deletes_its_file(den, media, api, make_user):
    _, bob, _ = den
    made = (await upload(await api(bob), "a.png", PNG)).json()
    assert len(stored(media)) == 2  # the image and its thumbnail

    def in_the_admin():
        from django.test import Client

        client = Client()
        client.force_login(make_user("root", is_staff=True, is_superuser=True))
        listing = client.get("/admin/chat/attachment/")
        assert listing.status_code == 200 and "a.png" in listing.content.decode()
        client.post(f"/admin/chat/attachment/{made['id']}/delete/", {"post": "yes"})

    await database_sync_to_async(in_the_admin)()
    assert stored(media) == [] and await Attachment.objects.acount() == 0


async def test_an_unsent_upload_of_a_deleted_user_is_nobodys(den, media, api, settings):
    settings.CHAT_ALLOW_GUESTS = True
    alice, _, _ = den
    await room_create(slug="hall", creator=alice)
    made = (await upload(await api(alice), "a.png", PNG, room="hall")).json()
    await alice.adelete()
    assert (await (await api()).http.get(made["url"])).status_code == 404


async def test_uploads_no_message_took_within_a_day_are_removed(den, media, api):
    _, bob, _ = den
    as_bob = await api(bob)
    sent, fresh, stale = [(await upload(as_bob, f"{n}.png", PNG)).json()["id"] for n in "abc"]
    await post(as_bob, "sent", sent)
    await Attachment.objects.filter(pk__in=[sent, stale]).aupdate(
        created=timezone.now() - timedelta(days=1, minutes=1)
    )
    assert await attachments_prune() == 1
    assert {a.pk async for a in Attachment.objects.all()} == {sent, fresh}
    assert len(stored(media)) == 4  # two images and their thumbnails
    refused = await post(as_bob, "too late", stale)
    assert refused.status_code == 400 and "not an unsent upload" in refused.json()["detail"]


async def test_without_a_broker_the_server_process_runs_the_schedule_itself(
    den, media, api, settings
):
    _, bob, _ = den
    stale = (await upload(await api(bob), "a.png", PNG)).json()["id"]
    await Attachment.objects.filter(pk=stale).aupdate(created=timezone.now() - timedelta(days=2))
    settings.CELERY_BEAT_SCHEDULE = {
        "prune": {"task": "chat.tasks.attachments_prune", "schedule": 0.05}
    }
    taskqueue.schedule_inline()
    async with asyncio.timeout(TIMEOUT):
        while await Attachment.objects.aexists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the task runs on a thread of its own: poll its effect
    assert stored(media) == []

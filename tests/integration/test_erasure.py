"""A deleted message leaves no text behind: not in its own entry, nor in its
edits (which carry the edited text) or previews, wherever history is read:
pages, `since`, the frame cache, exports, search, email, retention."""

import asyncio
import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.files.storage import default_storage

from chat import tasks
from chat.actor import Actor
from chat.models import Export, Message
from chat.selectors.messages import messages_search
from chat.services.exports import export_request
from chat.services.messages import message_delete, message_edit, messages_expire
from chat.services.rooms import room_create
from tests.conftest import mail_text
from tests.integration.conftest import age, say

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "my password is hunter2"


def change(kind: str, room: str, seq: int, **fields) -> dict:
    return {"type": kind, "room": room, "seq": seq, "client_id": str(uuid.uuid4()), **fields}


async def posted_edited_deleted(client, room: str) -> None:
    """Post a message, edit it to SECRET, then delete it (each acked)."""
    await client.say(room, "hello")
    for frame in (change("edit", room, 1, body=SECRET), change("delete", room, 1)):
        await client.send(frame)
        while (await client.recv())["type"] != "ack":
            pass


async def test_a_deleted_messages_edits_are_erased_in_history_since_and_the_cache(
    alice_and_bob, connect, guests_allowed
):
    a, b = alice_and_bob
    await posted_edited_deleted(a, "lobby")
    for _ in range(3):
        await b.expect("message")  # live, the edit was seen before the delete came

    guest, _ = await connect(path="/ws/chat/?name=gus")
    # The relay of this process cached each entry as it fanned it out: the
    # join's page would come from that cache, the edit's frame with it.
    joined = await guest.join("lobby", since=0)
    assert [m["kind"] for m in joined["messages"]] == ["message", "edit", "delete"]
    assert SECRET not in json.dumps(joined)
    edit = joined["messages"][1]
    assert (edit["body"], edit["deleted"]) == ("", True)
    await guest.send({"type": "history", "room": "lobby"})
    assert SECRET not in json.dumps(await guest.expect("history"))
    stored = [m async for m in Message.objects.filter(body__contains="hunter2")]
    assert stored == []


async def test_a_deleted_messages_edits_are_not_exported_or_found(make_user, media, connect):
    alice = await database_sync_to_async(make_user)("alice")
    actor = Actor(name="alice", user=alice)
    progress, _ = await connect(user=alice)
    await room_create(slug="den", creator=alice)
    await say(alice, "hello")
    await message_edit(actor=actor, slug="den", seq=1, body=SECRET, client_id=uuid.uuid4())
    await message_delete(actor=actor, slug="den", seq=1, client_id=uuid.uuid4())

    found = await messages_search(actor=actor, q="hunter2")
    assert found.messages == []
    await export_request(user=alice, slug="den")
    while (await progress.expect("export", timeout=30))["state"] != "done":
        pass
    export = await Export.objects.aget(room__slug="den")
    with default_storage.open(export.file.name) as file:
        archive = zipfile.ZipFile(io.BytesIO(file.read()))
    entries = json.loads(archive.read("messages.json"))
    assert [e["kind"] for e in entries] == ["message", "edit", "delete"]
    assert all("hunter2" not in e["body"] for e in entries)
    assert b"hunter2" not in archive.read("index.html")


async def test_an_email_not_yet_sent_leaves_out_a_deleted_message(away_bob, smtp, settings):
    alice, _bob = away_bob
    actor = Actor(name="alice", user=alice)
    await say(alice, "@bob the first")
    await say(alice, "@bob hello")
    await message_edit(
        actor=actor, slug="den", seq=2, body=f"@bob {SECRET}", client_id=uuid.uuid4()
    )
    await message_delete(actor=actor, slug="den", seq=2, client_id=uuid.uuid4())
    await age(settings.CHAT_NOTIFY_EMAIL_DELAY + 1)
    await asyncio.to_thread(tasks.notify_due.apply)
    text = mail_text(await smtp.next())
    assert "the first" in text and "hunter2" not in text


async def test_retention_erases_the_newer_edits_of_an_expired_message(make_user):
    alice = await database_sync_to_async(make_user)("alice")
    actor = Actor(name="alice", user=alice)
    await room_create(slug="den", creator=alice)
    await say(alice, "hello")
    await age(3 * 86400)
    await message_edit(actor=actor, slug="den", seq=1, body=SECRET, client_id=uuid.uuid4())
    assert await messages_expire(older_than=timedelta(days=1)) == 2
    assert [m async for m in Message.objects.filter(body__contains="hunter2")] == []

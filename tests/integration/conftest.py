"""Fixtures shared by integration tests: stored files, and an away user for email."""

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db.models import F

from chat.actor import Actor
from chat.models import Message, Profile
from chat.services.messages import message_send
from tests.factories import member_make, room_make


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Stored files (attachments, exports) under the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
async def away_bob(make_user):
    """(alice, bob): members of room den; bob has a verified address and no socket open."""

    def make():
        alice = make_user("alice")
        bob = make_user("bob", email="bob@example.com")
        Profile.objects.create(user=bob, verified_email="bob@example.com")
        room = room_make(slug="den", creator=alice, title="The den")
        member_make(room=room, user=bob)
        return alice, bob

    return await database_sync_to_async(make)()


async def say(user, body: str, slug: str = "den") -> None:
    actor = Actor(name=user.username, user=user)
    await message_send(actor=actor, slug=slug, body=body, client_id=uuid.uuid4())


async def age(seconds: float) -> None:
    """Make every message (and a last email) this much older: no waiting for the delay."""
    before = timedelta(seconds=seconds)
    await Message.objects.aupdate(created=F("created") - before)
    await Profile.objects.filter(notified__isnull=False).aupdate(notified=F("notified") - before)

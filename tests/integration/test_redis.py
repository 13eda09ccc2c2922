"""The consumer flow on the real channels-redis layer against the real Redis."""

import uuid

import pytest

from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def redis_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A prefix of its own, so runs never see each other's groups.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }


async def test_messages_and_typing_cross_the_redis_layer(connect, make_user):
    from channels.db import database_sync_to_async

    alice, bob = await database_sync_to_async(lambda: (make_user("alice"), make_user("bob")))()
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")

    ack = await a.say("lobby", "over redis")
    message = await b.expect("message")
    assert (message["seq"], message["body"], ack["seq"]) == (1, "over redis", 1)

    await b.send({"type": "typing", "room": "lobby"})
    assert (await a.expect("typing"))["user"]["name"] == "bob"

    await b.send({"type": "leave", "room": "lobby"})
    await b.expect("left")
    await a.say("lobby", "gone")
    assert await b.nothing()

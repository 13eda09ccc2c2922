"""`manage.py chattoken` prints a token that opens a socket."""

import io

import pytest
from django.core.management import CommandError, call_command

from chat.models import ApiToken
from chat.selectors.tokens import token_hash

pytestmark = pytest.mark.django_db(transaction=True)


def chattoken(*args: str) -> str:
    out = io.StringIO()
    call_command("chattoken", *args, stdout=out)
    return out.getvalue().strip()


def test_prints_a_token_of_which_only_the_hash_is_stored(make_user):
    make_user("botty")
    token = chattoken("botty", "--name", "ci bot")
    assert token.startswith("chat_") and len(token) > 40
    stored = ApiToken.objects.get(user__username="botty")
    assert stored.key_hash == token_hash(token) and token not in stored.key_hash
    assert stored.name == "ci bot" and token.startswith(stored.prefix)


def test_refuses_an_unknown_user_unless_asked_to_create_it():
    with pytest.raises(CommandError):
        chattoken("nobody")
    assert chattoken("nobody", "--create-user").startswith("chat_")


async def test_the_printed_token_authenticates_a_socket(transactional_db):
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    token = await database_sync_to_async(chattoken)("robot", "--create-user")
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["user"] == {"name": "robot", "guest": False}
    await communicator.disconnect()


def test_lists_and_revokes_tokens(make_user):
    make_user("botty")
    first = chattoken("botty", "--name", "one")
    chattoken("botty", "--name", "two")
    lines = chattoken("botty", "--list").splitlines()
    assert [line.split("\t")[3] for line in lines] == ["two", "one"]
    assert all(first not in line for line in lines)
    token_id = ApiToken.objects.get(name="one").pk
    chattoken("botty", "--revoke", str(token_id))
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["two"]
    with pytest.raises(CommandError, match="no token"):
        chattoken("botty", "--revoke", str(token_id))

"""Replies and reactions: stream entries over the socket and the HTTP API."""

import uuid
from urllib.parse import quote

import pytest

from chat import protocol
from chat.models import Message, Reaction

pytestmark = pytest.mark.django_db(transaction=True)


def reply(seq, body="re", **fields):
    return {"type": "send", "room": "lobby", "body": body, "client_id": str(uuid.uuid4()),
            "reply_to": seq, **fields}  # fmt: skip


def react(seq, emoji="👍", on=True):
    return {"type": "react", "room": "lobby", "seq": seq, "emoji": emoji, "on": on,
            "client_id": str(uuid.uuid4())}  # fmt: skip


async def acked(client, frame):
    """Send a frame and return (its ack, its own broadcast copy), passing over
    others' messages."""
    await client.send(frame)
    got = {}
    while len(got) < 2:
        message = await client.recv()
        if message.get("client_id") == frame["client_id"]:
            got[message["type"]] = message
        else:
            assert message["type"] == "message", message
    return got["ack"], got["message"]


async def test_a_reply_carries_a_quote_of_the_original_live_and_in_history(alice_and_bob):
    a, b = alice_and_bob
    await a.say("lobby", "lunch at noon?")
    await b.expect("message")
    ack, _ = await acked(b, reply(1, "yes"))
    seen = await a.expect("message")
    assert (seen["seq"], seen["reply_to"]) == (ack["seq"], 1)
    assert seen["quote"] == {
        "seq": 1, "author": {"name": "alice", "guest": False}, "body": "lunch at noon?",
        "deleted": False,
    }  # fmt: skip
    # The quote reads as the original does now.
    await acked(a, {"type": "delete", "room": "lobby", "seq": 1, "client_id": str(uuid.uuid4())})
    await b.expect("message")
    await b.send({"type": "history", "room": "lobby"})
    page = await b.expect("history")
    answer = next(m for m in page["messages"] if m["seq"] == 2)
    assert answer["quote"] == {**seen["quote"], "body": "", "deleted": True}


async def test_a_quote_is_cut_to_its_first_characters(alice_and_bob):
    a, b = alice_and_bob
    await a.say("lobby", "x" * 1000)
    await acked(b, reply(1))
    assert len((await a.expect("message"))["quote"]["body"]) == protocol.QUOTE_CHARS


@pytest.mark.parametrize("target", [99, 2], ids=["missing", "not-a-message"])
async def test_a_reply_to_no_message_is_refused_and_not_stored(alice_and_bob, target):
    a, _ = alice_and_bob
    await a.say("lobby", "hi")
    await acked(a, {"type": "edit", "room": "lobby", "seq": 1, "body": "hi!",
                    "client_id": str(uuid.uuid4())})  # fmt: skip
    frame = reply(target)
    await a.send(frame)
    error = await a.expect("error")
    assert (error["code"], error["ref"]) == ("not_found", frame["client_id"])
    assert await Message.objects.acount() == 2


async def test_reactions_toggle_idempotently_with_counts_and_names(alice_and_bob, connect):
    a, b = alice_and_bob
    await a.say("lobby", "ship it")
    await b.expect("message")

    ack, _ = await acked(b, react(1))
    seen = await a.expect("message")
    assert (seen["kind"], seen["target"], seen["body"], seen["seq"]) == (
        "react",
        1,
        "👍",
        ack["seq"],
    )
    assert seen["reactions"] == [{"emoji": "👍", "count": 1, "users": ["bob"]}]

    await acked(b, react(1))  # the same state again: still one reaction
    assert (await a.expect("message"))["reactions"] == seen["reactions"]
    assert await Reaction.objects.acount() == 1

    await acked(a, react(1))
    await acked(a, react(1, "🎉"))
    _, last = await acked(b, react(1, on=False))
    assert last["kind"] == "unreact"
    assert last["reactions"] == [
        {"emoji": "👍", "count": 1, "users": ["alice"]},
        {"emoji": "🎉", "count": 1, "users": ["alice"]},
    ]
    await acked(b, react(1, on=False))  # not there: nothing changes
    assert await Reaction.objects.acount() == 2

    # A client that was away gets every entry through `since`, and the message
    # itself shows the reactions as they are now.
    late, _ = await connect(user=b.user)
    joined = await late.join("lobby", since=1)
    assert [m["kind"] for m in joined["messages"]] == ["react"] * 4 + ["unreact"] * 2
    await late.send({"type": "history", "room": "lobby", "before": 2})
    [message] = (await late.expect("history"))["messages"]
    assert message["reactions"] == last["reactions"]


async def refused(client, frame):
    """Send a frame and return the error it gets, passing over messages."""
    await client.send(frame)
    while (got := await client.recv())["type"] == "message":
        pass
    assert (got["type"], got["ref"]) == ("error", frame["client_id"]), got
    return got


async def test_who_may_react_and_to_what(alice_and_bob, connect, guests_allowed):
    a, b = alice_and_bob
    await a.say("lobby", "one")
    await a.say("lobby", "two")
    await acked(a, {"type": "delete", "room": "lobby", "seq": 2, "client_id": str(uuid.uuid4())})
    guest, _ = await connect(path="/ws/chat/?name=gus")
    await guest.join("lobby")
    for client, frame, code in [
        (guest, react(1), "forbidden"),
        (b, react(2), "bad_request"),  # deleted
        (b, react(3), "not_found"),  # the delete entry
        (b, react(99), "not_found"),
    ]:
        assert (await refused(client, frame))["code"] == code
    assert await Reaction.objects.acount() == 0
    assert await Message.objects.acount() == 3


async def test_a_message_holds_a_bounded_number_of_different_emoji(alice_and_bob, settings):
    settings.CHAT_SEND_BURST = settings.CHAT_IP_SEND_BURST = 100
    a, b = alice_and_bob
    await a.say("lobby", "vote")
    emoji = [chr(0x1F600 + i) for i in range(protocol.MAX_EMOJI_PER_MESSAGE + 1)]
    for one in emoji[:-1]:
        await acked(b, react(1, one))
    assert (await refused(b, react(1, emoji[-1])))["code"] == "bad_request"
    await acked(a, react(1, emoji[0]))  # an emoji already there still counts
    assert await Reaction.objects.acount() == protocol.MAX_EMOJI_PER_MESSAGE + 1


async def test_deleting_a_message_clears_its_reactions(alice_and_bob):
    a, b = alice_and_bob
    await a.say("lobby", "hm")
    await acked(b, react(1))
    await acked(a, {"type": "delete", "room": "lobby", "seq": 1, "client_id": str(uuid.uuid4())})
    assert await Reaction.objects.acount() == 0


async def test_replies_and_reactions_over_http(alice_and_bob, api):
    a, b = alice_and_bob
    await a.say("lobby", "hello")
    http = await api(b.user)
    posted = await http("POST", "/rooms/lobby/messages",
                        {"body": "hi", "client_id": str(uuid.uuid4()), "reply_to": 1})  # fmt: skip
    assert posted.status_code == 201, posted.text
    assert (await a.expect("message"))["quote"]["body"] == "hello"

    path = f"/rooms/lobby/messages/1/reactions/{quote('❤️')}"
    for _ in range(2):
        put = await http("PUT", path)
        assert put.status_code == 200, put.text
        assert (await a.expect("message"))["reactions"] == [
            {"emoji": "❤️", "count": 1, "users": ["bob"]}
        ]
    assert (await http("DELETE", path)).status_code == 200
    assert (await a.expect("message"))["reactions"] == []
    refused = await http("PUT", f"/rooms/lobby/messages/1/reactions/{quote('lol')}")
    assert (refused.status_code, refused.json()["code"]) == (400, "bad_request")
    assert "emoji" in refused.json()["detail"]

"""Link previews against a local web server: fetched off the send's path,
cached per URL, added to the stream, and refused when they should be."""

import asyncio
import sys
import uuid

import pytest
import redis

from chat.models import LinkPreview, Message
from chat.services.previews import preview_fetch
from tests.conftest import REDIS_URL, ROOT, TIMEOUT, WsClient

pytestmark = pytest.mark.django_db(transaction=True)


async def say(client, body):
    client_id = str(uuid.uuid4())
    await client.send({"type": "send", "room": "lobby", "body": body, "client_id": client_id})
    return client_id


async def test_a_preview_follows_the_message_as_a_stream_entry(alice_and_bob, page_server, connect):
    a, b = alice_and_bob
    url = page_server.url("/page")
    await say(a, f"the handbook: {url}.")
    message = await b.expect("message")
    assert (message["kind"], message["preview"]) == ("message", None)  # not held for the fetch
    entry = await b.expect("message")
    assert (entry["kind"], entry["target"], entry["body"]) == ("preview", message["seq"], url)
    assert entry["preview"] == {
        "url": url, "title": "The Chat Handbook", "description": "How we talk.",
        "image": page_server.url("/cover.png"),
    }  # fmt: skip

    # Recovered with `since` like any entry; history shows the message with it.
    late, _ = await connect(user=b.user)
    joined = await late.join("lobby", since=message["seq"])
    assert [(m["kind"], m["preview"]["title"]) for m in joined["messages"]] == [
        ("preview", "The Chat Handbook")
    ]
    await late.send({"type": "history", "room": "lobby", "before": message["seq"] + 1})
    [shown] = (await late.expect("history"))["messages"]
    assert shown["preview"]["title"] == "The Chat Handbook"

    # The same URL again: from the cache, not fetched twice.
    await say(a, f"again {url}")
    await b.expect("message")
    assert (await b.expect("message"))["preview"]["title"] == "The Chat Handbook"
    assert page_server.hits["/page"] == 1


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/to?url=http://169.254.169.254/latest/meta-data/", "private address"),
        ("/to?url=http://127.0.0.1:1/internal", "private address"),
        ("/image.png", "not HTML"),
        ("/empty", "no title or description"),
        ("/missing", "HTTP 404"),
        ("/slow", "timeout"),
    ],
)
async def test_refused_fetches_leave_no_preview(page_server, settings, caplog, path, why):
    settings.CHAT_PREVIEW_TIMEOUT = 0.5
    url = page_server.url(path)
    with caplog.at_level("INFO", logger="chat.services.previews"):
        preview = await preview_fetch(url=url)
    assert (preview.ok, preview.title) == (False, "")
    assert why.lower() in caplog.text.lower() or (why == "timeout" and "no preview" in caplog.text)
    assert page_server.hits.get("/internal") is None  # the redirect was not followed there


async def test_a_huge_page_is_cut_off_and_its_head_still_previewed(page_server):
    preview = await preview_fetch(url=page_server.url("/big"))
    assert (preview.ok, preview.title) == (True, "A very big page")
    assert await asyncio.to_thread(page_server.big_done.wait, TIMEOUT)
    # The reader closed the connection early: the server's writes failed
    # before the whole 10 MiB was out.
    assert page_server.sent < 10 * 1024 * 1024


async def test_a_message_without_a_url_or_with_previews_off_fetches_nothing(
    alice_and_bob, page_server, settings
):
    a, b = alice_and_bob
    await say(a, "no link here")
    settings.CHAT_PREVIEWS = False
    await say(a, f"off: {page_server.url('/plain')}")
    assert (await b.expect("message"))["body"] == "no link here"
    await b.expect("message")
    assert await b.nothing(0.5)
    assert page_server.hits == {}


@pytest.mark.redis
async def test_the_worker_process_unfurls_for_a_server_process(start_server, page_server, tmp_path):
    server = start_server(redis_url=REDIS_URL, CHAT_PREVIEW_ALLOW=f"127.0.0.1:{page_server.port}")
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "runworker", "chat-jobs", cwd=ROOT, env=server.env,
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        # The pub/sub layer drops what is sent before the worker listens: wait for it.
        listening = redis.Redis.from_url(REDIS_URL)
        async with asyncio.timeout(TIMEOUT * 2):
            while not await asyncio.to_thread(listening.pubsub_channels, "*chat-jobs*"):  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # Redis state, with no event to wait on
        client = await WsClient.open(server.ws_url + "?name=ada")
        await client.send({"type": "join", "room": "lobby"})
        await client.expect("joined")
        await say(client, f"read {page_server.url('/plain')}")
        async with asyncio.timeout(TIMEOUT * 2):
            while (frame := await client.recv())["type"] != "message" or frame["kind"] != "preview":
                pass
        assert frame["preview"]["title"] == "Just a title"
        await client.close()
    except TimeoutError:
        raise AssertionError((tmp_path / "worker.log").read_text()[-3000:]) from None
    finally:
        worker.terminate()
        await worker.wait()
    assert await LinkPreview.objects.filter(ok=True).acount() == 1
    assert await Message.objects.filter(kind="preview").acount() == 1

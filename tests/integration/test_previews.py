"""Link previews against a local web server: fetched off the send's path,
cached per URL, added to the stream, and refused when they should be."""

import asyncio
import uuid

import pytest

from chat.models import LinkPreview, Message
from chat.services.previews import preview_fetch
from tests.conftest import TIMEOUT, WsClient

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


async def preview_frame(client: WsClient) -> dict:
    async with asyncio.timeout(TIMEOUT * 3):
        while (frame := await client.recv())["type"] != "message" or frame["kind"] != "preview":
            pass
    return frame


@pytest.mark.redis
async def test_a_celery_worker_unfurls_for_a_server_process_even_when_killed_mid_fetch(
    start_server, start_worker, redis_process, page_server
):
    allow = f"127.0.0.1:{page_server.port}"
    # A dead worker's task is handed out again after 3 s (CELERY_VISIBILITY_TIMEOUT).
    worker = start_worker(CHAT_PREVIEW_ALLOW=allow, CELERY_VISIBILITY_TIMEOUT="3")
    server = start_server(redis_url=redis_process.url, CHAT_PREVIEW_ALLOW=allow)
    client = await WsClient.open(server.ws_url + "?name=ada")
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("joined")
    await say(client, f"read {page_server.url('/hold')}")
    await asyncio.to_thread(page_server.arrived.get, timeout=TIMEOUT)  # the worker is fetching
    worker.kill()  # kill -9, mid-task: it never acks
    worker.start()
    await asyncio.to_thread(page_server.arrived.get, timeout=TIMEOUT * 2)  # the task, again
    page_server.release.set()
    assert (await preview_frame(client))["preview"]["title"] == "Just a title"
    await client.close()
    assert await LinkPreview.objects.filter(ok=True).acount() == 1
    assert await Message.objects.filter(kind="preview").acount() == 1

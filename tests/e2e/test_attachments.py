"""Attachments in the browser: a picture sent with the paperclip shows as a
thumbnail to the other person."""

import asyncio
from pathlib import Path

import pytest

from tests.e2e.conftest import both_in, shown

pytestmark = pytest.mark.django_db(transaction=True)

# A 2 x 2 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020806000000"
    "72b60d240000001649444154789c63f8cfc0f09f8181818181e1ff7f0600"
    "2cf705fb2a42b0350000000049454e44ae426082"
)


async def test_a_picture_shows_as_a_thumbnail_and_a_file_as_a_link(
    browser, start_server, users, tmp_path
):
    server = start_server(DEBUG="1", MEDIA_ROOT=str(tmp_path / "media"))
    alice, bob = await both_in(browser, server, "lobby")
    await alice.fill("#body", "our logo")
    await alice.set_input_files("#file", files=[{"name": "logo.png", "mimeType": "image/png",
                                                 "buffer": PNG}])  # fmt: skip
    thumb = shown(bob, "our logo").locator("img.thumb")
    await thumb.wait_for()
    assert await thumb.get_attribute("alt") == "logo.png"
    await bob.wait_for_function("document.querySelector('img.thumb')?.naturalWidth === 2")

    await alice.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                 "buffer": b"remember the milk"}])  # fmt: skip
    link = shown(bob, "notes.txt").locator("a.attachment")
    await link.wait_for()
    async with bob.expect_download() as download:
        await link.click()
    path = await (await download.value).path()
    assert await asyncio.to_thread(Path(path).read_bytes) == b"remember the milk"
    assert alice.errors == [] and bob.errors == []

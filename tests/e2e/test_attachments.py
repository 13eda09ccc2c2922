"""Attachments in the browser: a picture sent with the Attach button shows as a
thumbnail to the other person."""

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import both_in, shown

pytestmark = pytest.mark.django_db(transaction=True)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


async def test_a_picture_shows_as_a_thumbnail_and_a_file_as_a_link(
    browser, start_server, users, tmp_path
):
    server = start_server(DEBUG="1", MEDIA_ROOT=str(tmp_path / "media"))
    alice, bob = await both_in(browser, server, "lobby")
    await alice.fill("#body", "our logo")
    await alice.set_input_files("#file", files=[{"name": "logo.png", "mimeType": "image/png",
                                                 "buffer": png(960, 720)}])  # fmt: skip
    thumb = shown(bob, "our logo").locator("img.thumb")
    await thumb.wait_for()
    assert await thumb.get_attribute("alt") == "logo.png"
    # The thumbnail (480 x 360), not the picture, shown in a 240 x 180 box.
    await bob.wait_for_function("document.querySelector('img.thumb')?.naturalWidth === 480")
    assert (await thumb.get_attribute("width"), await thumb.get_attribute("height")) == (
        "240",
        "180",
    )

    await alice.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                 "buffer": b"remember the milk"}])  # fmt: skip
    link = shown(bob, "notes.txt").locator("a.attachment")
    await link.wait_for()
    async with bob.expect_download() as download:
        await link.click()
    path = await (await download.value).path()
    assert await asyncio.to_thread(Path(path).read_bytes) == b"remember the milk"
    assert alice.errors == [] and bob.errors == []

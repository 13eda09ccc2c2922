"""Serving stored files (attachments, exports): streamed a chunk at a time,
off the event loop and the database thread, so a big file is never held
whole in memory; typed as the caller says, never sniffed, and sandboxed."""

from collections.abc import AsyncIterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse


async def file_response(
    *, name: str, content_type: str, filename: str, inline: bool = False
) -> StreamingHttpResponse:
    """The stored file `name`, offered as `filename`: shown by the browser
    with `inline`, else downloaded."""
    stored, size = await sync_to_async(_open, thread_sensitive=False)(name)
    response = StreamingHttpResponse(_chunks(stored), content_type=content_type)
    response["Content-Length"] = str(size)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(filename)}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _open(name: str) -> tuple[File, int]:
    """A stored file and its size (for a remote storage, both may ask the network)."""
    file = default_storage.open(name)
    return file, file.size


async def _chunks(file: File, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    read = sync_to_async(file.read, thread_sensitive=False)
    try:
        while chunk := await read(size):
            yield chunk
    finally:
        await sync_to_async(file.close, thread_sensitive=False)()

"""Uploads: refused while they arrive once past CHAT_MAX_UPLOAD_BYTES, and
typed by their first bytes, never by the name or the type the client claims."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

# The types an attachment may have, by signature. Images show inline.
SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
]
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "text/plain": ".txt",
}


def content_type_of(head: bytes) -> str | None:
    """The type of a file from its first bytes, if it is one that is allowed:
    the images, PDF, zip, and plain UTF-8 text (no NUL)."""
    for signature, content_type in SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the end of the head is fine.
            if exc.start < len(head) - 3:
                return None
        return "text/plain"
    return None


class CappedUploadHandler(FileUploadHandler):
    """Stops an upload whose body is (or grows) past CHAT_MAX_UPLOAD_BYTES,
    before the rest is read; the view answers `too_large`."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        if content_length > settings.CHAT_MAX_UPLOAD_BYTES + 64 * 1024:  # the form around it
            self._refuse()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.CHAT_MAX_UPLOAD_BYTES:
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _refuse(self) -> None:
        self.request.upload_too_large = True
        raise StopUpload(connection_reset=False)

"""Uploads: refused while they arrive once past CHAT_MAX_UPLOAD_BYTES, typed
by their first bytes, never by the name or the type the client claims, and,
for images, decoded once to check them and make their thumbnail."""

import io
import warnings
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from PIL import Image, ImageOps

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


# The extensions a file of each type keeps in its name. Any other (.html,
# .svg, .js, .exe…) gets its type's own added, so that a download opened
# from disk, or from an export's folder, is what its bytes are: text stays text.
KEPT_EXTENSIONS = {
    "image/png": {".png"},
    "image/jpeg": {".jpg", ".jpeg", ".jpe"},
    "image/gif": {".gif"},
    "image/webp": {".webp"},
    "application/pdf": {".pdf"},
    "application/zip": {".zip"},
    "text/plain": {".txt", ".text", ".log", ".md", ".csv", ".tsv", ".json", ".yaml", ".yml"},
}
NAME_CHARS = 200  # Attachment.name's length


def name_safe(name: str, content_type: str) -> str:
    """A file's name as it is offered: ending in an extension of its type (an
    `x.html` of text is `x.html.txt`), at most NAME_CHARS characters."""
    extension = "." + name.rpartition(".")[2].lower() if "." in name else ""
    if extension in KEPT_EXTENSIONS.get(content_type, set()):
        return name[:NAME_CHARS]
    added = EXTENSIONS[content_type]
    return name[: NAME_CHARS - len(added)] + added


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


THUMBNAIL_BOX = (480, 360)  # twice the page's 240 x 180, for dense screens
# More pixels than this is refused before decoding: a small file can hold a
# huge image (a decompression bomb).
MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True, slots=True)
class Thumbnail:
    width: int
    height: int
    webp: bytes


def image_thumbnail(file: IO[bytes] | File) -> Thumbnail:
    """The size of an uploaded image and a WebP thumbnail of it (its first
    frame, turned upright, with no metadata such as the place a photo was
    taken); ValueError saying why if it is not a sound image."""
    try:
        with warnings.catch_warnings():
            # Pillow warns of a big image on opening it; the check below refuses it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{width} x {height} pixels is more than allowed")
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail(THUMBNAIL_BOX)
            has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
            out = io.BytesIO()
            picture.convert("RGBA" if has_alpha else "RGB").save(out, "WEBP", quality=80)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a sound image ({exc})") from None
    finally:
        file.seek(0)
    return Thumbnail(width=width, height=height, webp=out.getvalue())


def request_bytes_max() -> int:
    """The largest request body the server reads: the largest upload, and the
    multipart form around it."""
    return settings.CHAT_MAX_UPLOAD_BYTES + 64 * 1024


class CappedUploadHandler(FileUploadHandler):
    """Stops an upload whose body is (or grows) past CHAT_MAX_UPLOAD_BYTES,
    before the rest is read; the view answers `too_large`."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # Django does not catch StopUpload here (a 500): the first chunk stops it.
        self.received = 0
        self.refused = content_length > request_bytes_max()
        if self.refused:
            self._flag()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.refused or self.received > settings.CHAT_MAX_UPLOAD_BYTES:
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _refuse(self) -> None:
        self._flag()
        raise StopUpload(connection_reset=False)

    def _flag(self) -> None:
        # The view reads this to answer `too_large`: Django's request has no field for it.
        self.request.upload_too_large = True  # type: ignore[union-attr]

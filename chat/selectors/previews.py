"""Reading link previews."""

import hashlib

from chat import protocol
from chat.models import LinkPreview


def url_hash(url: str) -> str:
    """The key of a URL's cached preview (LinkPreview.url_hash)."""
    return hashlib.sha256(url.encode()).hexdigest()


async def previews_of(*, urls: set[str]) -> dict[str, protocol.PreviewOut]:
    """The fetched previews of these URLs (those that gave one), in one query."""
    if not urls:
        return {}
    hashes = {url_hash(url) for url in urls}
    rows = LinkPreview.objects.filter(url_hash__in=hashes, ok=True)
    return {
        p.url: protocol.PreviewOut(
            url=p.url, title=p.title, description=p.description, image=p.image
        )
        async for p in rows
    }

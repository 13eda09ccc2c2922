"""The outbound fetch of link previews: what a web page says about itself.

Every fetch is suspicious, because the URL comes from a user:
- only http and https, to hosts whose every address is public: private,
  loopback, link-local and reserved addresses are refused (SSRF), unless the
  exact host:port is allowed by CHAT_PREVIEW_ALLOW;
- the connection goes to the address that was checked (pinned; the Host
  header and TLS name stay the URL's), so DNS cannot change it in between;
- redirects are followed by hand, at most three, each checked the same way;
- a timeout per step and one for the whole fetch;
- HTML only (by Content-Type), and at most CHAT_PREVIEW_MAX_BYTES of it is
  read: a bigger page is cut off, which keeps its <head>.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

MAX_REDIRECTS = 3
HTML_TYPES = {"text/html", "application/xhtml+xml"}
TITLE_CHARS, DESCRIPTION_CHARS, IMAGE_CHARS = 300, 500, 2000


class Refused(Exception):
    """The URL may not be fetched, or its page gives nothing to preview."""


@dataclass(frozen=True, slots=True)
class Unfurled:
    title: str
    description: str
    image: str


async def unfurl(url: str, *, step_seconds: float, max_bytes: int, allow: set[str]) -> Unfurled:
    """Fetch `url` safely and read its title, description and image; or raise
    Refused. Each step (connect, read) has `step_seconds`, the whole fetch twice that."""
    headers = {"User-Agent": "chat-link-preview/1", "Accept": "text/html"}
    async with (
        asyncio.timeout(step_seconds * 2),
        httpx.AsyncClient(timeout=step_seconds, headers=headers, follow_redirects=False) as client,
    ):
        for _ in range(MAX_REDIRECTS + 1):
            pinned, host, hostname = await _checked(url, allow=allow)
            request = client.build_request(
                "GET", pinned, headers={"Host": host}, extensions={"sni_hostname": hostname}
            )
            response = await client.send(request, stream=True)
            try:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                return await _read(response, url=url, max_bytes=max_bytes)
            finally:
                await response.aclose()
    raise Refused("too many redirects")


async def _checked(url: str, *, allow: set[str]) -> tuple[str, str, str]:
    """The URL with its host replaced by a checked address, its Host header and
    its hostname; or Refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url[:100]}")
    hostname = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("bad port") from None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise Refused(f"cannot resolve {hostname}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if f"{hostname}:{port}" not in allow:
        for address in addresses:
            if not address_public(address):
                raise Refused(f"{hostname} is a private address ({address})")
    address = addresses[0]
    netloc = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    host = hostname if parts.port is None else f"{hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host, hostname


# IPv6 prefixes whose last 32 bits are an IPv4 address that a host, a gateway
# or a translator may reach: IPv4-compatible (::a.b.c.d), IPv4-mapped and
# -translated (::ffff:a.b.c.d, ::ffff:0:a.b.c.d) and NAT64 (64:ff9b::/96 and
# the local-use 64:ff9b:1::/48).
_EMBEDDING_IPV4 = [
    ipaddress.IPv6Network(prefix)
    for prefix in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
]


def address_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet, and so is every IPv4
    address it carries (6to4, Teredo, NAT64, mapped or compatible forms):
    Python 3.11's `is_global` judges those by their IPv6 prefix alone."""
    if not address.is_global and not (
        isinstance(address, ipaddress.IPv6Address)
        and any(address in net for net in _EMBEDDING_IPV4)
    ):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    embedded: list[ipaddress.IPv4Address] = []
    if any(address in net for net in _EMBEDDING_IPV4):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    return all(ipv4.is_global for ipv4 in embedded)


async def _read(response: httpx.Response, *, url: str, max_bytes: int) -> Unfurled:
    if response.status_code != 200:
        raise Refused(f"HTTP {response.status_code}")
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in HTML_TYPES:
        raise Refused(f"not HTML: {kind or 'no Content-Type'}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= max_bytes:
            break  # cut off: what a preview needs is in the <head>
    text = bytes(body[:max_bytes]).decode(response.encoding or "utf-8", errors="replace")
    return page_preview(text, url=url)


def page_preview(html: str, *, url: str) -> Unfurled:
    """The title, description and image an HTML page gives (Open Graph first);
    Refused if it gives neither a title nor a description."""
    parser = _HeadParser()
    parser.feed(html)
    meta = parser.meta
    title = _text(meta.get("og:title") or parser.title, TITLE_CHARS)
    description = _text(
        meta.get("og:description") or meta.get("description", ""), DESCRIPTION_CHARS
    )
    if not (title or description):
        raise Refused("the page has no title or description")
    image = urljoin(url, meta.get("og:image", "").strip()) if meta.get("og:image") else ""
    if urlsplit(image).scheme not in ("http", "https") or len(image) > IMAGE_CHARS:
        image = ""
    return Unfurled(title=title, description=description, image=image)


def _text(value: str, limit: int) -> str:
    # One line of printable text: no NUL (PostgreSQL refuses it), no controls.
    cleaned = "".join(char if char.isprintable() else " " for char in value)
    return " ".join(cleaned.split())[:limit]


class _HeadParser(HTMLParser):
    """Collects <title> and the <meta> name/property → content pairs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.meta: dict[str, str] = {}
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = dict(attrs)
            key = (values.get("property") or values.get("name") or "").lower()
            content = values.get("content")
            if key and content and key not in self.meta:
                self.meta[key] = content

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and len(self.title) < TITLE_CHARS * 4:
            self.title += data

"""Link previews' fetch rules without a network: which URLs are refused, and
what a page's HTML gives."""

import ipaddress

import pytest

from chat import protocol
from chat.unfurl import Refused, _checked, address_public, page_preview


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/admin",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        # IPv6 forms that carry a private IPv4 address (3.11's is_global passes them).
        "http://[::127.0.0.1]/",  # IPv4-compatible
        "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated
        "http://[64:ff9b::7f00:1]/",  # NAT64, 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64, 169.254.169.254
        "http://[64:ff9b:1::a00:1]/",  # local-use NAT64, 10.0.0.1
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "http://[2002:c0a8:1::]/",  # 6to4 of 192.168.0.1
        "ftp://example.com/file",
        "file:///etc/passwd",
        "http://127.0.0.1:99999/",
    ],
)
async def test_private_addresses_and_other_schemes_are_refused(url):
    with pytest.raises(Refused):
        await _checked(url, allow=set())


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("::10.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("2001:0:4136:e378:8000:63bf:3f57:fdf2", False),  # Teredo, client 192.168.2.13
    ],
)
def test_embedded_ipv4_addresses_are_judged_as_ipv4(address, public):
    assert address_public(ipaddress.ip_address(address)) is public


async def test_an_allowed_host_and_port_is_fetched_from_the_address_checked():
    pinned, host, hostname = await _checked(
        "http://localhost:8123/a?b=1#c", allow={"localhost:8123"}
    )
    assert pinned in ("http://127.0.0.1:8123/a?b=1", "http://[::1]:8123/a?b=1")
    assert (host, hostname) == ("localhost:8123", "localhost")
    with pytest.raises(Refused):
        await _checked("http://localhost:8124/", allow={"localhost:8123"})


def test_open_graph_comes_first_and_text_is_cleaned():
    html = (
        '<head><title>Plain</title><meta name="description" content="plain desc">'
        '<meta property="og:title" content=" Open\n  Graph ">'
        '<meta property="og:image" content="/i.png">'
    )
    page = page_preview(html, url="https://example.com/a/b")
    assert (page.title, page.description, page.image) == (
        "Open Graph", "plain desc", "https://example.com/i.png"
    )  # fmt: skip
    page = page_preview("<title>\x00T\u0007itle</title>" + "<meta property='og:image' "
                        "content='javascript:alert(1)'>", url="https://e.com/")  # fmt: skip
    assert (page.title, page.image) == ("T itle", "")
    assert len(page_preview("<title>" + "x" * 1000, url="https://e.com/").title) == 300
    with pytest.raises(Refused):
        page_preview("<body>nothing</body>", url="https://e.com/")


@pytest.mark.parametrize(
    ("body", "url"),
    [
        ("see https://example.com/a?b=1.", "https://example.com/a?b=1"),
        ("(https://example.com/x) and http://second.example", "https://example.com/x"),
        ("no link, just text", None),
        ("http://" + "a" * 2000 + ".com", None),
    ],
)
def test_the_first_url_of_a_message_is_the_one_previewed(body, url):
    assert protocol.first_url(body) == url

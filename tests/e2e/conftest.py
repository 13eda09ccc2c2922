"""Browser tests' shared parts: a server process, two users with a password,
and the page actions the tests repeat."""

import re

import pytest

TIMEOUT_MS = 15_000


@pytest.fixture
def server(start_server):
    return start_server(DEBUG="1")


@pytest.fixture(scope="session")
def password_hash():
    """ "pw" hashed as a server process (default settings) can check it; hashed once."""
    from django.contrib.auth.hashers import make_password

    return make_password("pw", hasher="pbkdf2_sha256")


@pytest.fixture
def users(make_user, password_hash):
    made = make_user("alice"), make_user("bob")
    for user in made:
        user.password = password_hash
        user.save(update_fields=["password"])
    return made


async def sign_in(browser, server, name, *, width=1100, **context_options):
    """A new browser context, signed in through the login form; collects page errors."""
    context = await browser.new_context(viewport={"width": width, "height": 720}, **context_options)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(f"{server.http_url}/accounts/login/")
    await page.fill("#id_username", name)
    await page.fill("#id_password", "pw")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#app[data-ready]")  # the page's modules have all run
    return page


async def open_room(page, slug):
    """Pick the room from the sidebar (on a phone, from the drawer behind ☰)."""
    if await page.locator("#rooms-toggle").is_visible():
        await page.click("#rooms-toggle")
    await page.click(f"a[data-room={slug}]")
    await page.wait_for_selector(f"#room-title:text('{slug}')")


async def say(page, text):
    await page.fill("#body", text)
    await page.press("#body", "Enter")


def shown(page, text):
    return page.locator("#messages li.message", has_text=text)


async def both_in(browser, server, slug, *, bob_width=1100):
    """alice and bob, signed in, each with the room open."""
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob", width=bob_width)
    await open_room(alice, slug)
    await open_room(bob, slug)
    return alice, bob


class Network:
    """The page's sockets, routed through Playwright: `down` refuses new ones
    and drops the open one, as a lost network would, without a server restart."""

    def __init__(self) -> None:
        self.up = True
        self.open: list = []

    async def route(self, ws) -> None:
        if not self.up:
            await ws.close(code=1006, reason="the network is down")
            return
        ws.connect_to_server()
        self.open.append(ws)

    async def down(self) -> None:
        self.up = False
        for ws in self.open:
            await ws.close(code=1006, reason="the network is down")
        self.open.clear()

    async def attach(self, page) -> None:
        """Route the page's sockets through this network, from a reload on."""
        await page.route_web_socket(re.compile(r"/ws/chat/"), self.route)
        await page.reload()
        await page.wait_for_selector("#app[data-ready]")

"""Shared factories: users, socket clients (in-process and real), and server processes.

Services a test needs but cannot reach make it skip with the reason, except
under CI=true, where that is a failure.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import jsonschema.protocols
import pytest
import redis
import websockets
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from chat import spec
from chat.services.tokens import token_create

CI = os.environ.get("CI") == "true"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10  # seconds to wait for any one expected event


def unavailable(reason: str) -> None:
    """Skip for a missing service, or fail under CI=true."""
    if CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and settings.POSTGRES_UNAVAILABLE:
        unavailable(f"PostgreSQL is unreachable: {settings.POSTGRES_UNAVAILABLE}")
    if item.get_closest_marker("redis"):
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis is unreachable at {REDIS_URL}: {exc}")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Close what async code and server processes left connected, so the test
    database can be dropped."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    """Each test starts with empty rate buckets, in the process and in Redis
    (an hourly bucket would otherwise outlive the run that emptied it), and
    empty socket counts."""
    from chat.services import limits

    limits._buckets.clear()
    limits._sockets_here.clear()
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(f"{settings.CHANNEL_LAYER_PREFIX}:rate:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    yield


@pytest.fixture(autouse=True)
def fresh_channel_layers() -> Iterator[None]:
    """Each test gets new layer instances: their queues belong to one event loop."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
async def native_pool_closed() -> AsyncIterator[None]:
    """The send path's psycopg pool belongs to one event loop: closed with the test's."""
    from chat.services.stream_pg import pool_close

    yield
    await pool_close()


# --- Users -------------------------------------------------------------------


@pytest.fixture
def make_user(transactional_db: None) -> Callable[..., Any]:
    def make(username: str | None = None, **fields: Any) -> Any:
        username = username or f"user-{uuid.uuid4().hex[:8]}"
        return get_user_model().objects.create_user(username=username, password="pw", **fields)

    return make


@pytest.fixture
def guests_allowed(settings: Any) -> None:
    settings.CHAT_ALLOW_GUESTS = True


# --- In-process clients (channels.testing) -----------------------------------


# Presence frames come whenever someone joins or leaves: tests not about
# presence skip them, unless they ask for one by type.
SKIP = frozenset({"presence"})


def _frame_validators() -> dict[str, jsonschema.protocols.Validator]:
    """A JSON Schema validator per server frame type, from the AsyncAPI document."""
    document = spec.asyncapi_document()
    components = {"components": document["components"]}
    validators = {}
    for message in document["operations"]["send"]["messages"]:
        name = message["$ref"].rsplit("/", 1)[1]
        payload = document["components"]["messages"][name]
        schema = {**payload["payload"], **components}
        validators[payload["name"]] = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.FormatChecker()
        )
    return validators


FRAME_VALIDATORS = _frame_validators()


def check_server_frame(frame: dict[str, Any]) -> None:
    """Fail unless the frame matches its schema in the published AsyncAPI document."""
    assert frame.get("type") in FRAME_VALIDATORS, f"undocumented frame type: {frame}"
    FRAME_VALIDATORS[frame["type"]].validate(frame)


class Frames:
    """JSON frames over some transport; subclasses provide send_text and recv_text.
    Every frame received is checked against the AsyncAPI document."""

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.send_text(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = TIMEOUT, skip: frozenset[str] = SKIP) -> dict[str, Any]:
        """The next frame whose type is not skipped."""
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.recv_text())
                check_server_frame(frame)
                if frame["type"] not in skip:
                    return frame

    async def expect(self, type_: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame (of the types not skipped), which must be of this type."""
        frame = await self.recv(timeout, skip=SKIP - {type_})
        assert frame["type"] == type_, frame
        return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        """True if no frame (but skipped ones) arrives within the timeout."""
        try:
            frame = await self.recv(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame: {frame}")


class Client(Frames):
    """An in-process socket (channels.testing) that speaks JSON frames."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def recv_text(self) -> str:
        # No timeout here: Frames.recv bounds the whole wait.
        return await self.communicator.receive_from(timeout=3600)

    async def join(self, room: str, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "join", "room": room, **fields})
        return await self.expect("joined")

    async def say(
        self, room: str, body: str, client_id: str | None = None, *, echo: bool = True
    ) -> dict[str, Any]:
        """Send a message and return its ack, also taking the sender's own copy of
        the message unless echo=False (a resend is not broadcast again)."""
        client_id = client_id or str(uuid.uuid4())
        await self.send({"type": "send", "room": room, "body": body, "client_id": client_id})
        ack, echoed = None, not echo
        while ack is None or not echoed:
            frame = await self.recv()
            assert frame.get("client_id") == client_id, frame
            if frame["type"] == "ack":
                ack = frame
            else:
                assert frame["type"] == "message", frame
                echoed = True
        return ack


@pytest.fixture
async def connect(transactional_db: None) -> Any:
    """connect(user=None, path=..., origin=..., headers=...) -> (Client, hello frame)."""
    from chatsite.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _connect(
        *,
        user: Any = None,
        path: str = "/ws/chat/",
        origin: str | None = "http://localhost",
        headers: list[tuple[bytes, bytes]] | None = None,
        expect_hello: bool = True,
    ) -> tuple[Client, dict[str, Any] | None]:
        all_headers = list(headers or [])
        if not any(name == b"host" for name, _ in all_headers):
            all_headers.append((b"host", b"localhost"))  # as a browser's handshake has
        if origin is not None:
            all_headers.append((b"origin", origin.encode()))
        if user is not None:
            token = (await token_create(user=user)).token
            all_headers.append((b"authorization", f"Bearer {token}".encode()))
        communicator = WebsocketCommunicator(application, path, headers=all_headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected, f"handshake refused for {path}"
        opened.append(communicator)
        client = Client(communicator)
        return client, (await client.expect("hello") if expect_hello else None)

    yield _connect
    for communicator in opened:
        await communicator.disconnect()


@pytest.fixture
async def alice_and_bob(connect: Any, make_user: Any) -> tuple[Client, Client]:
    """Clients of two users, alice and bob, both joined to the lobby."""
    alice, bob = await database_sync_to_async(lambda: (make_user("alice"), make_user("bob")))()
    a, _ = await connect(user=alice)
    b, _ = await connect(user=bob)
    await a.join("lobby")
    await b.join("lobby")
    a.user, b.user = alice, bob
    return a, b


# --- HTTP API clients ---------------------------------------------------------


class Api:
    """An httpx client into chatsite.asgi.application, as one user (or nobody)."""

    def __init__(self, token: str | None) -> None:
        from chatsite.asgi import application

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://localhost",
            headers=headers,
        )

    async def __call__(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.request(method, "/api/v1" + path, json=json, **kw)


@pytest.fixture
async def api(make_user: Any) -> Any:
    """api(user=None) -> an Api client authenticated with a new token of the user."""
    clients: list[Api] = []

    async def make(user: Any = None) -> Api:
        token = None
        if user is not None:
            token = (await token_create(user=user)).token
        clients.append(Api(token))
        return clients[-1]

    yield make
    for client in clients:
        await client.http.aclose()


# --- Server processes ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database, as a DATABASE_URL a server process can use."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class ServerProcess:
    """A real daphne serving chatsite.asgi:application on a free port; `argv(port)`
    gives another command line for it (as docker-compose.yml's does)."""

    def __init__(
        self,
        *,
        log_path: Path,
        env: dict[str, str],
        argv: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        command = self.argv(self.port) if self.argv else [
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
            "--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536",
            "chatsite.asgi:application",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)  # polling a port that is not open yet: there is no event
        raise RuntimeError(f"server did not answer /healthz: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> "ServerProcess":
        """Stop (SIGTERM) and start again on the same port."""
        self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_server(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """start_server(redis_url=None, **env) -> a running ServerProcess on the test database."""
    servers: list[ServerProcess] = []

    def start(*, redis_url: str | None = None, **extra_env: str) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG"}}
        env.update(
            DJANGO_SETTINGS_MODULE="chatsite.settings",
            DATABASE_URL=database_url(),
            SECRET_KEY="test-only-secret-key",
            CHAT_ALLOW_GUESTS="1",
            # Every test client comes from 127.0.0.1: one address, for the whole run.
            CHAT_IP_SEND_BURST="100000",
            CHAT_IP_SEND_PER_MINUTE="6000000",
            CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS="100000",
            # A test's sockets may outlive its event loop: stopping must not
            # wait the production 5 s for them to answer 1012.
            CHAT_DRAIN_SECONDS="1",
        )
        env.update(extra_env)
        if redis_url:
            env["REDIS_URL"] = redis_url
        server = ServerProcess(log_path=tmp_path / f"server-{len(servers)}.log", env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        # A graceful stop costs half a second, and the tests of it stop their
        # servers themselves: kill, unless the server shares Redis keys with
        # later tests (the default prefix), whose presence and socket counts
        # must then go with it.
        if "REDIS_URL" in server.env and "CHANNEL_LAYER_PREFIX" not in server.env:
            server.stop()
        else:
            server.kill()


class RedisProcess:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2)

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--dir", str(self.dir),
             "--logfile", str(self.dir / "redis.log")],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)  # polling a port that is not open yet
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: every key, group and subscription is gone."""
        try:
            self.client().shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # it answers by closing the connection


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private Redis, for tests that stop it; skipped (failed under CI) without redis-server."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


# --- A real browser ------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    # Root in a container, no GPU, and no calls home on a machine without internet.
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
async def browser() -> Any:
    """Headless Chromium through Playwright; skipped (failed under CI) without Chromium."""
    if shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield CspBypassing(browser)
        await browser.close()


class CspBypassing:
    """A Playwright browser whose new contexts bypass the site's
    Content-Security-Policy unless told not to (`bypass_csp=False`):
    Playwright's `wait_for_function` evaluates its predicate with `eval`,
    which the policy forbids. tests/e2e/test_csp.py uses the page under it."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

    async def new_context(self, **options: Any) -> Any:
        return await self.browser.new_context(**{"bypass_csp": True, **options})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.browser, name)


# --- Real WebSocket clients ------------------------------------------------------


class WsClient(Frames):
    """A `websockets` client that speaks JSON frames to a real server."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> "WsClient":
        client = cls(await websockets.connect(url, open_timeout=TIMEOUT, **kwargs))
        await client.expect("hello")
        return client

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def recv_text(self) -> str:
        return await self.ws.recv()

    async def close(self) -> None:
        await self.ws.close()


# --- A web server for link previews ------------------------------------------

PAGES = {
    "/page": (
        "text/html; charset=utf-8",
        b"<html><head><title>Ignored when og:title is there</title>"
        b'<meta property="og:title" content="The Chat Handbook">'
        b'<meta property="og:description" content="How we   talk.\x00">'
        b'<meta property="og:image" content="/cover.png"></head><body>hi</body></html>',
    ),
    "/plain": ("text/html", b"<title>Just a title</title>"),
    "/image.png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "/empty": ("text/html", b"<html><body>no head at all</body></html>"),
}


class PageServer:
    """An HTTP server on 127.0.0.1 in a thread: the pages above, /big (10 MB of
    HTML after its <head>), /slow (answers after 3 s), /hold (puts in `arrived`,
    and answers as /plain once `release` is set), and /to?url=... (a 302).
    `hits` counts requests per path; `sent` the bytes /big got out, final once
    `big_done` is set."""

    def __init__(self) -> None:
        import http.server
        import queue
        import threading
        from urllib.parse import parse_qs, urlsplit

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                server.hits[path] = server.hits.get(path, 0) + 1
                if path == "/to":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(urlsplit(self.path).query)["url"][0])
                    self.end_headers()
                elif path == "/slow":
                    server.release.wait(3)
                    self._send("text/html", b"<title>Too late</title>")
                elif path == "/hold":
                    server.arrived.put(path)
                    server.release.wait(30)
                    self._send(*PAGES["/plain"])
                elif path == "/big":
                    self._big()
                elif path in PAGES:
                    self._send(*PAGES[path])
                else:
                    self.send_error(404)

            def _send(self, content_type: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _big(self) -> None:
                head, chunk = (
                    b"<html><head><title>A very big page</title></head><body>",
                    b"x" * 65536,
                )
                # A fixed send buffer: the kernel would otherwise grow it to
                # megabytes, and hold much of the page whatever the reader does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(head) + 160 * len(chunk)))
                self.end_headers()
                try:
                    self.wfile.write(head)
                    for _ in range(160):  # 10 MiB
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    pass  # the reader had enough, and closed the connection
                finally:
                    server.big_done.set()

        self.hits: dict[str, int] = {}
        self.sent = 0
        self.big_done = threading.Event()
        self.release = threading.Event()
        self.arrived: queue.Queue[str] = queue.Queue()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def page_server(settings: Any) -> Iterator[PageServer]:
    """A local web server, which link previews may fetch (CHAT_PREVIEW_ALLOW)."""
    server = PageServer()
    settings.CHAT_PREVIEW_ALLOW = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


# --- Email and the Celery worker ---------------------------------------------


class SmtpServer:
    """aiosmtpd on a free loopback port, in a thread: every message it
    receives is parsed into `inbox`, and `next()` waits for the next one."""

    def __init__(self) -> None:
        import queue
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received: queue.Queue = queue.Queue()
        self.inbox: list[Any] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.content, policy=policy.default)
                message.raw = envelope.content  # as sent, before any decoding
                inbox.append(message)
                received.put(message)
                return "250 OK"

        inbox, received = self.inbox, self.received
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    async def next(self, timeout: float = TIMEOUT) -> Any:
        """The next message received, waiting for it; TimeoutError if none comes."""
        import queue

        try:
            return await asyncio.to_thread(self.received.get, timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no email arrived") from None

    @property
    def env(self) -> dict[str, str]:
        """Settings for a process that should send here."""
        return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.port)}


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, which this process's mail goes to."""
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    yield server
    server.stop()


def mail_text(message: Any) -> str:
    """The plain-text part of a received email."""
    return message.get_body(preferencelist=("plain",)).get_content()


def mail_html(message: Any) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


class WorkerProcess:
    """A real `celery -A chatsite worker` (one pool process), in a process
    group of its own so that `kill()` takes the worker and its pool at once."""

    def __init__(self, *, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        starts = self.log_path.read_text().count(" ready.") if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatsite", "worker", "--loglevel", "INFO",
             "--concurrency", "1", "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while self.log_path.read_text().count(" ready.") <= starts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)  # the worker's log is the only sign that it is consuming
        return self

    def kill(self) -> None:
        """kill -9 of the worker and its pool process: no chance to ack or requeue."""
        assert self.proc is not None
        os.killpg(self.proc.pid, 9)
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM (warm shutdown); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            return self.proc.wait()


@pytest.fixture
def start_worker(
    transactional_db: None, redis_process: "RedisProcess", tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(**env) -> a running worker on the test database, whose
    broker is a private Redis (`redis_process`), shared by the layer."""
    workers: list[WorkerProcess] = []

    def start(**extra_env: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if k not in {"DEBUG"}}
        env.update(
            DJANGO_SETTINGS_MODULE="chatsite.settings",
            DATABASE_URL=database_url(),
            SECRET_KEY="test-only-secret-key",
            REDIS_URL=redis_process.url,
            CELERY_BROKER_URL=redis_process.url,
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
        )
        env.update(extra_env)
        worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            os.killpg(worker.proc.pid, 9)
            worker.proc.wait()

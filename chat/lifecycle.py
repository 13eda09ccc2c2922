"""The server process's life: health, readiness, a graceful stop, and two
mends to how daphne sends (close codes 1012 and 1013, and slow readers).

On SIGTERM (a rolling restart, `docker compose stop`), a daphne process
drains before it exits: it stops being ready (/readyz answers 503, so the
proxy sends new clients elsewhere), refuses new sockets, closes every open
socket with 1012 "service restart", waits up to CHAT_DRAIN_SECONDS for them
to go, then lets daphne stop. Clients reconnect to another replica and
recover what they missed with `since`.
"""

import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from chat import metrics, protocol

if TYPE_CHECKING:
    from chat.consumers import ChatConsumer

logger = logging.getLogger(__name__)

_draining = False
_installed: set[asyncio.AbstractEventLoop] = set()


def draining() -> bool:
    """True once this process has been asked to stop."""
    return _draining


def close_codes_allow() -> None:
    """Let daphne send the registered close codes 1012 and 1013.

    autobahn (daphne's WebSocket library) refuses to send any code but 1000
    and 3000-4999, a check older than IANA's registration of 1012 "service
    restart" and 1013 "try again later", which clients act on. Those two go
    straight to the frame writer; everything else still takes the checked path.
    """
    from daphne.ws_protocol import WebSocketProtocol

    check = WebSocketProtocol.serverClose
    if getattr(check, "allows_1012", False):
        return

    def server_close(self, code=None):
        if code in (1012, 1013):
            self.sendCloseFrame(code=code, isReply=False)
        else:
            check(self, code)

    server_close.allows_1012 = True
    WebSocketProtocol.serverClose = server_close


def outbound_bound() -> None:
    """Disconnect a client that stops reading, before its backlog grows without bound.

    daphne writes every frame into the connection's buffer at once, whether or
    not the client reads. When more than CHAT_MAX_OUTBOUND_BYTES wait there,
    the socket gets a close frame 4008 "too slow" (behind the backlog: a client
    that reads again sees it) and is dropped 10 s later if it has not answered.
    Nothing is lost: the client comes back and catches up with `since`.
    """
    from daphne.ws_protocol import WebSocketProtocol

    send = WebSocketProtocol.serverSend
    if getattr(send, "bounded", False):
        return

    def server_send(self, content, binary=False):
        if self.state not in (self.STATE_CONNECTING, self.STATE_OPEN):
            return  # closing or closed: autobahn would raise; the client recovers with `since`
        waiting = _buffered(self.transport)
        if self.state == self.STATE_OPEN and waiting > settings.CHAT_MAX_OUTBOUND_BYTES:
            metrics.SLOW_CLIENTS.inc()
            logger.info("closing a socket that stopped reading: %d bytes waiting", waiting)
            # autobahn drops the connection if the close is not answered in time:
            # time enough for a client that reads again to reach the close frame.
            self.closeHandshakeTimeout = 10
            self.sendCloseFrame(code=int(protocol.CloseCode.TOO_SLOW), isReply=False)
            return
        send(self, content, binary)

    server_send.bounded = True
    WebSocketProtocol.serverSend = server_send


def _buffered(transport) -> int:
    """Bytes written to a Twisted TCP transport and not yet sent."""
    return (
        len(getattr(transport, "dataBuffer", b""))
        - getattr(transport, "offset", 0)
        + getattr(transport, "_tempDataLen", 0)
    )


def drain_install(loop: asyncio.AbstractEventLoop) -> None:
    """Drain on SIGTERM, under daphne (whose reactor otherwise stops at once,
    dropping every socket without a close code). Once per event loop."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if loop in _installed or reactor is None or not reactor.running:
        return
    _installed.add(loop)
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(_drain(reactor)))


async def _drain(reactor) -> None:
    global _draining
    if _draining:  # a second SIGTERM: stop now
        reactor.stop()
        return
    _draining = True
    from chat.delivery import sockets_open

    sockets: list[ChatConsumer] = sockets_open()
    logger.info("SIGTERM: closing %d sockets with 1012, then stopping", len(sockets))
    try:
        await asyncio.gather(*(socket.restart() for socket in sockets), return_exceptions=True)
        closed = asyncio.gather(*(socket.closed.wait() for socket in sockets))
        await asyncio.wait_for(closed, timeout=settings.CHAT_DRAIN_SECONDS)
    except TimeoutError:
        logger.warning(
            "stopping with sockets still closing after %s s", settings.CHAT_DRAIN_SECONDS
        )
    finally:
        reactor.stop()


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def health_checks() -> dict[str, str]:
    """Each dependency's state: "ok", "error: <what>", or "not configured" (Redis
    is optional: without REDIS_URL the process uses the in-memory layer)."""
    checks = {}
    try:
        await sync_to_async(_database_check)()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if not settings.REDIS_URL:
        checks["redis"] = "not configured"
    else:
        client = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            await client.ping()
            checks["redis"] = "ok"
        except (redis.RedisError, OSError) as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        finally:
            await client.aclose()
    return checks

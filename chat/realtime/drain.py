"""A graceful stop.

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

from django.conf import settings

from chat.realtime.sockets import sockets_open

logger = logging.getLogger(__name__)

_draining = False
_installed: set[asyncio.AbstractEventLoop] = set()


def draining() -> bool:
    """True once this process has been asked to stop."""
    return _draining


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
    sockets = sockets_open()
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

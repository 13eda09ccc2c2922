"""Mends to daphne, the default server, applied when chatsite.asgi loads.

Each one closes a gap between what daphne does and what the chat promises:
- close codes 1012 and 1013 may be sent (autobahn refuses them);
- a client that stops reading is dropped before its backlog grows without bound;
- a request body over the cap is refused with 413 before it is written anywhere;
- a connection must send its request headers within CHAT_HTTP_HEADER_TIMEOUT;
- the access log names a request's path, never its query string.
Under another ASGI server none of these apply (see docs/security.md).
"""

import io
import logging

from django.conf import settings

from chat import metrics, protocol
from chat.uploads import request_bytes_max

logger = logging.getLogger(__name__)


_mended = False


def daphne_mend() -> None:
    """Apply every mend below, once per process."""
    global _mended
    if _mended:
        return
    _mended = True
    close_codes_allow()
    outbound_bound()
    request_body_bound()
    header_deadline()
    access_log_paths()


def close_codes_allow() -> None:
    """Let daphne send the registered close codes 1012 and 1013.

    autobahn (daphne's WebSocket library) refuses to send any code but 1000
    and 3000-4999, a check older than IANA's registration of 1012 "service
    restart" and 1013 "try again later", which clients act on. Those two go
    straight to the frame writer; everything else still takes the checked path.
    """
    from daphne.ws_protocol import WebSocketProtocol

    check = WebSocketProtocol.serverClose

    def server_close(self, code=None):
        if code in (1012, 1013):
            self.sendCloseFrame(code=code, isReply=False)
        else:
            check(self, code)

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

    def server_send(self, content, binary=False):
        if not outbound_refuse(self):
            send(self, content, binary)

    WebSocketProtocol.serverSend = server_send


def outbound_refuse(ws) -> bool:
    """Whether a frame for daphne's WebSocket protocol `ws` must not be
    written: it is closing or closed (autobahn would raise; the client
    recovers with `since`), or too much waits unread, when this closes it."""
    if ws.state not in (ws.STATE_CONNECTING, ws.STATE_OPEN):
        return True
    waiting = _buffered(ws.transport)
    if ws.state == ws.STATE_OPEN and waiting > settings.CHAT_MAX_OUTBOUND_BYTES:
        metrics.SLOW_CLIENTS.inc()
        logger.info("closing a socket that stopped reading: %d bytes waiting", waiting)
        # autobahn drops the connection if the close is not answered in time:
        # time enough for a client that reads again to reach the close frame.
        ws.closeHandshakeTimeout = 10
        ws.sendCloseFrame(code=int(protocol.CloseCode.TOO_SLOW), isReply=False)
        return True
    return False


def _buffered(transport) -> int:
    """Bytes written to a Twisted TCP transport and not yet sent."""
    return (
        len(getattr(transport, "dataBuffer", b""))
        - getattr(transport, "offset", 0)
        + getattr(transport, "_tempDataLen", 0)
    )


def request_body_bound() -> None:
    """Refuse a request body over the cap (413, the API's JSON error), by its
    Content-Length before any of it is read, or once the bytes received pass
    the cap (a chunked body): before authentication, and before daphne would
    spool it to a temporary file. The cap is the largest upload and its form
    (chat/uploads.py)."""
    from daphne.http_protocol import WebRequest

    got_length, content_chunk = WebRequest.gotLength, WebRequest.handleContentChunk
    process = WebRequest.process

    def refuse(request) -> None:
        request.body_refused = True
        request.content = io.BytesIO()  # what was kept goes; nothing more is
        detail = f"the request body is over {request_bytes_max()} bytes"
        error = protocol.ApiError(code=protocol.ErrorCode.TOO_LARGE, detail=detail)
        body = error.model_dump_json().encode()
        request.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )

    def gotLength(self, length):
        self.body_refused, self.body_received = False, 0
        got_length(self, length)
        if length is not None and length > request_bytes_max():
            refuse(self)

    def handleContentChunk(self, data):
        self.body_received += len(data)
        if self.body_refused:
            # What the client still sends is read and dropped, so that it
            # reads the answer rather than a reset; up to a bound, then closed.
            if self.body_received > 3 * request_bytes_max():
                self.channel.transport.loseConnection()
        elif self.body_received > request_bytes_max():
            refuse(self)
        else:
            content_chunk(self, data)

    def process_unless_refused(self):
        if getattr(self, "body_refused", False):
            self.channel.transport.loseConnection()  # the whole body came, and went
            return None
        return process(self)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = process_unless_refused


def header_deadline() -> None:
    """Close a connection whose first request's headers have not all arrived
    CHAT_HTTP_HEADER_TIMEOUT seconds after it opened (slowloris: one header
    byte a minute would keep twisted's idle timeout from ever firing)."""
    from twisted.web.http import HTTPChannel

    made, headers_done = HTTPChannel.connectionMade, HTTPChannel.allHeadersReceived

    def expire(channel) -> None:
        if not getattr(channel.transport, "connected", False):
            return  # the client went first
        logger.info("closing a connection that sent no request headers in time")
        channel.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
        channel.transport.loseConnection()

    def connectionMade(self) -> None:
        made(self)
        self.header_timer = self.callLater(settings.CHAT_HTTP_HEADER_TIMEOUT, lambda: expire(self))

    def allHeadersReceived(self) -> None:
        timer = getattr(self, "header_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        headers_done(self)

    HTTPChannel.connectionMade = connectionMade  # type: ignore[method-assign]
    HTTPChannel.allHeadersReceived = allHeadersReceived  # type: ignore[method-assign]


def access_log_paths() -> None:
    """Write a request's path to daphne's access log, never its query string,
    which can hold what people search for, or a guest's name."""
    from daphne.access import AccessLogGenerator

    log = AccessLogGenerator.__call__

    def call(self, protocol_name, action, details):
        if "path" in details:
            details = {**details, "path": details["path"].split("?", 1)[0]}
        log(self, protocol_name, action, details)

    AccessLogGenerator.__call__ = call

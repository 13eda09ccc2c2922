"""Mends to daphne, the default server, applied when chatsite.asgi loads.

Each one closes a gap between what daphne does and what the chat promises:
- close codes 1012 and 1013 may be sent (autobahn refuses them);
- a client that stops reading is dropped before its backlog grows without bound;
- a request body over the cap is refused with 413 before it is written anywhere,
  and an upload's body with no credentials at all with 401, before it is read;
- a connection must send its request headers within CHAT_HTTP_HEADER_TIMEOUT,
  and its body at a pace (CHAT_HTTP_BODY_TIMEOUT, CHAT_HTTP_BODY_MIN_RATE);
- the access log names a request's path, never its query string.
Under another ASGI server none of these apply (see docs/security.md).
"""

import io
import logging
import time

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
    body_deadline()
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


def write_now(transport, data: bytes) -> None:
    """Write to a Twisted TCP transport, sending at once what the kernel
    takes. Twisted's own `write` buffers every byte and waits for the
    reactor to say the socket is writable: two epoll changes and a loop turn
    per frame, which a fan-out to thousands of sockets pays thousands of
    times. Anything already buffered, a transport that is closing, or one
    that is not plain TCP (TLS), takes Twisted's way, so the order holds."""
    socket = getattr(transport, "socket", None)
    if (
        socket is None
        or _buffered(transport)
        or not transport.connected
        or transport.disconnecting
        or transport._writeDisconnected
    ):
        transport.write(data)
        return
    try:
        sent = socket.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.write(data)  # Twisted finds the connection lost, and says so
        return
    if sent < len(data):
        transport.write(data[sent:])


def _buffered(transport) -> int:
    """Bytes written to a Twisted TCP transport and not yet sent."""
    return (
        len(getattr(transport, "dataBuffer", b""))
        - getattr(transport, "offset", 0)
        + getattr(transport, "_tempDataLen", 0)
    )


# A body larger than this (or of unknown length) is an upload: one with no
# credentials at all (no Authorization header, no session cookie) is refused
# before it is read. Forms and JSON bodies are far smaller.
UPLOAD_BYTES = 64 * 1024
_STATUS = {
    protocol.ErrorCode.TOO_LARGE: b"413 Content Too Large",
    protocol.ErrorCode.UNAUTHORIZED: b"401 Unauthorized",
}


def _credentials(request) -> bool:
    """Whether a request carries any credentials (a token, a session cookie),
    good or bad: the application decides which once the body has come."""
    headers = request.requestHeaders
    cookie = settings.SESSION_COOKIE_NAME.encode() + b"="
    return headers.hasHeader(b"authorization") or any(
        cookie in value for value in headers.getRawHeaders(b"cookie", [])
    )


def request_body_bound() -> None:
    """Refuse a request body over the cap (413, the API's JSON error), by its
    Content-Length before any of it is read, or once the bytes received pass
    the cap (a chunked body): before authentication, and before daphne would
    spool it to a temporary file. The cap is the largest upload and its form
    (chat/uploads.py). An upload with no credentials at all is refused (401)
    before any of its body is read."""
    from daphne.http_protocol import WebRequest

    got_length, content_chunk = WebRequest.gotLength, WebRequest.handleContentChunk
    process = WebRequest.process

    def refuse(request, code: protocol.ErrorCode, detail: str) -> None:
        request.body_refused = True
        request.content = io.BytesIO()  # what was kept goes; nothing more is
        body = protocol.ApiError(code=code, detail=detail).model_dump_json().encode()
        request.channel.transport.write(
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (_STATUS[code], len(body), body)
        )

    def too_large(request) -> None:
        detail = f"the request body is over {request_bytes_max()} bytes"
        refuse(request, protocol.ErrorCode.TOO_LARGE, detail)

    def gotLength(self, length):
        self.body_refused, self.body_received = False, 0
        got_length(self, length)
        if length is not None and length > request_bytes_max():
            too_large(self)
        elif (length is None or length > UPLOAD_BYTES) and not _credentials(self):
            detail = "sign in (or send Authorization: Bearer <token>) to upload"
            refuse(self, protocol.ErrorCode.UNAUTHORIZED, detail)

    def handleContentChunk(self, data):
        self.body_received += len(data)
        if self.body_refused:
            # What the client still sends is read and dropped, so that it
            # reads the answer rather than a reset; up to a bound, then closed.
            if self.body_received > 3 * request_bytes_max():
                self.channel.transport.loseConnection()
        elif self.body_received > request_bytes_max():
            too_large(self)
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


def body_deadline() -> None:
    """Close a connection whose request body stops coming, or trickles in:
    nothing for CHAT_HTTP_BODY_TIMEOUT seconds, or, past a grace of as many
    seconds, less than CHAT_HTTP_BODY_MIN_RATE bytes a second on average (a
    slow-body attack holds a connection and its spooled bytes for as long as
    it likes otherwise). Checked every second while a body is arriving."""
    from daphne.http_protocol import WebRequest

    got_length, content_chunk = WebRequest.gotLength, WebRequest.handleContentChunk
    process, lost = WebRequest.process, WebRequest.connectionLost

    def check(request) -> None:
        now = time.monotonic()
        idle = settings.CHAT_HTTP_BODY_TIMEOUT
        elapsed = now - request.body_since
        slow = elapsed > idle and request.body_got < settings.CHAT_HTTP_BODY_MIN_RATE * elapsed
        if now - request.body_heard > idle or slow:
            logger.info("closing a connection whose request body came too slowly")
            metrics.SLOW_BODIES.inc()
            request.channel.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
            )
            request.channel.transport.loseConnection()
        else:
            request.body_timer = request.channel.callLater(1, check, request)

    def stop(request) -> None:
        timer = getattr(request, "body_timer", None)
        if timer is not None and timer.active():
            timer.cancel()

    def gotLength(self, length):
        got_length(self, length)
        if (length is None or length > 0) and not getattr(self, "body_refused", False):
            self.body_since = self.body_heard = time.monotonic()
            self.body_got = 0
            self.body_timer = self.channel.callLater(1, check, self)

    def handleContentChunk(self, data):
        if hasattr(self, "body_since"):
            self.body_got += len(data)
            self.body_heard = time.monotonic()
        content_chunk(self, data)

    def process_then_stop(self):
        stop(self)  # the whole body came
        return process(self)

    def connectionLost(self, reason):
        stop(self)
        return lost(self, reason)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = process_then_stop
    WebRequest.connectionLost = connectionLost


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

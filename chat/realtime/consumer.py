"""The chat socket: parse a frame, call one domain function, send the result."""

import asyncio
import json
import logging
import secrets

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import events, metrics, protocol
from chat.ratelimit import Hold, TokenBucket
from chat.realtime import drain, sockets, sweep
from chat.realtime.auth import actor_admit
from chat.realtime.outlet import AsgiOutlet, Frame, Outlet
from chat.realtime.presence import typing_notify
from chat.realtime.relay import sockets_recheck, user_unsubscribe
from chat.realtime.rooms import room_join, room_leave
from chat.realtime.writes import Writes
from chat.roomstate import SeqTracker
from chat.selectors.messages import history_page, mentions_page, messages_search
from chat.services.broadcast import LAYER_ERRORS
from chat.services.dms import block_set, dm_send
from chat.services.limits import socket_release
from chat.services.messages import message_delete, message_edit, message_submit, reaction_set
from chat.services.moderation import room_moderate
from chat.services.rooms import read_marker_set
from chat.services.users import users_seen

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    """One socket, many rooms. `/ws/chat/<slug>/` also joins that room on connect."""

    # No channel of its own on the layer: the process's relay brings this
    # socket its rooms' and its user's events (chat/realtime/relay.py).
    channel_layer_alias = None
    _faults: TokenBucket | None = None
    _closed: asyncio.Event | None = None  # until connect: a socket refused early
    gone = False

    @property
    def faults(self) -> TokenBucket:
        """This socket's budget of logged tracebacks (made on its first fault)."""
        if self._faults is None:
            self._faults = TokenBucket(burst=3, per_minute=1)
        return self._faults

    async def __call__(self, scope, receive, send) -> None:
        # With Redis away, subscribing the socket's user raises. Refuse the
        # handshake (the client retries) instead of dying.
        try:
            await super().__call__(scope, receive, send)
        except LAYER_ERRORS as exc:
            metrics.LAYER_FAILURES.labels("connect").inc()
            logger.warning("socket refused: channel layer unavailable (%s)", exc)
            await send({"type": "websocket.close", "code": int(protocol.CloseCode.TRY_AGAIN_LATER)})

    async def connect(self) -> None:
        self.socket_open()
        await self.accept()
        if not await self.admit():
            return
        await self.send_frame(protocol.HelloEvent(user=self.actor.author))
        if slug := self.scope["url_route"]["kwargs"].get("room"):
            await self.handle_text(json.dumps({"type": "join", "room": slug}))

    def socket_open(self) -> None:
        """What a socket keeps, before it is accepted."""
        # This socket's name, unique across processes (presence and the
        # socket counts key by it).
        self.channel_name = f"ws.{secrets.token_hex(8)}"
        self.outlet: Outlet = self.scope.get("chat.outlet") or AsgiOutlet(self.base_send)
        # Per joined room, the seqs this socket has been sent, in any frame: a
        # seq is never sent twice, and holes are filled by the sweep (chat/realtime/sweep.py).
        self.rooms: dict[str, SeqTracker] = {}
        # After a write refused for a while, the later ones wait for it to come again.
        self.hold = Hold()
        # Sends handed to the writer, whose answers are to be written in order
        # (made on the first send: an idle socket holds nothing of it).
        self.writes: Writes | None = None
        # Per room being joined, its events that arrived before the join's
        # read of last_seq was sent: forwarded after `joined`, in order.
        self.joining: dict[str, list[events.RoomGroupEvent]] = {}
        self.loop = asyncio.get_running_loop()
        self.gone = False  # set on disconnect: the drain waits on it (`closed`)
        self._closed: asyncio.Event | None = None
        # The session this socket was authenticated by, to close it on log-out.
        self.session_key = (
            self.scope["session"].session_key if self.scope.get("auth") == "session" else None
        )
        # The client's address (the real one behind a proxy: daphne --proxy-headers).
        self.address = (self.scope.get("client") or [None])[0]
        # Counted against its user's open sockets (a guest's: its address's), once admitted.
        self.holder: str | None = None

    async def admit(self) -> bool:
        """Let the accepted socket's actor in (chat/realtime/auth.py), and
        track it; or close it, saying why, and return False."""
        try:
            self.actor = await actor_admit(self)
        except protocol.ChatError as error:
            await self.refuse(error)
            return False
        sockets.socket_register(self)
        sweep.sweep_start()
        drain.drain_install(self.loop)
        metrics.SOCKETS.inc()
        return True

    async def refuse(self, error: protocol.ChatError) -> None:
        """Say why the socket may not go on, and close it."""
        await self.send_frame(protocol.error_event(error))
        await self.close(code=error.close)

    async def disconnect(self, code: int) -> None:
        if sockets.socket_unregister(self):
            metrics.SOCKETS.dec()
        try:
            if (holder := getattr(self, "holder", None)) is not None:
                await socket_release(holder=holder, channel=self.channel_name)
            if hasattr(self, "actor") and self.actor.user_id is not None:
                await user_unsubscribe(user_id=self.actor.user_id, socket=self)
            for slug in list(getattr(self, "rooms", ())):
                await room_leave(actor=self.actor, slug=slug, socket=self)
            if hasattr(self, "actor") and self.actor.user_id is not None:
                await users_seen(user_ids={self.actor.user_id})  # holds back missed-message email
        finally:
            self.gone = True
            if self._closed is not None:
                self._closed.set()

    @property
    def closed(self) -> asyncio.Event:
        """Set once the socket has disconnected (made when first asked for:
        the drain's; an idle socket holds none)."""
        if self._closed is None:
            self._closed = asyncio.Event()
            if self.gone:
                self._closed.set()
        return self._closed

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            error = protocol.ChatError(
                protocol.ErrorCode.BAD_REQUEST, "send JSON text frames, not binary"
            )
            await self.send_frame(protocol.error_event(error))
            return
        await self.handle_text(text_data)

    async def handle_text(self, text: str) -> None:
        """Parse and dispatch one frame by its type; every failure becomes an `error` frame."""
        frame = write = None  # write: the client_id of a frame that writes
        try:
            frame = protocol.parse_frame(text)
            metrics.FRAMES_IN.labels(frame.type).inc()
            if (write := getattr(frame, "client_id", None)) is not None:
                self.hold.check(ref=str(write))
            await getattr(self, f"on_{frame.type}")(frame)
        except protocol.ChatError as error:
            if frame is None:
                metrics.FRAMES_IN.labels("invalid").inc()
            if error.ref is None and frame is not None:
                error.ref = str(frame.type if write is None else write)
            if write is not None:
                self.hold.refused(error, ref=str(write))
            await self.send_frame(protocol.error_event(error))
        except Exception:
            # A client that keeps hitting a fault must not flood the log:
            # three tracebacks per socket, then at most one a minute.
            if self.faults.take() is None:
                logger.exception("frame %s failed", getattr(frame, "type", "?"))
            fault = protocol.ChatError(
                protocol.ErrorCode.INTERNAL_ERROR, "the server failed; try again"
            )
            await self.send_frame(protocol.error_event(fault))

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        if hasattr(self, "outlet"):
            await self.outlet.flush()  # the frames written before the close go first
        # Under daphne, autobahn accepts only a plain int, not an IntEnum member.
        await super().close(code=None if code is None else int(code), reason=reason)

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections (a thread hop) before
        # every message; each ORM call here does so around itself already
        # (database_sync_to_async), and the send path uses no Django connection.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def send_frame(self, frame: protocol.ServerFrame) -> None:
        metrics.FRAMES_OUT.labels(frame.type).inc()
        self.outlet.write(Frame(protocol.encode(frame)))

    def require_joined(self, slug: str) -> None:
        if slug not in self.rooms:
            raise protocol.ChatError(protocol.ErrorCode.BAD_REQUEST, f"join room '{slug}' first")

    # --- Frames from the client --------------------------------------------

    async def on_join(self, frame: protocol.JoinFrame) -> None:
        cap = settings.CHAT_MAX_ROOMS_PER_SOCKET
        if frame.room not in self.rooms and len(self.rooms) >= cap:
            raise protocol.ChatError(
                protocol.ErrorCode.BAD_REQUEST, f"a socket may join at most {cap} rooms"
            )
        held = self.joining[frame.room] = []
        try:
            joined = await room_join(
                actor=self.actor, slug=frame.room, since=frame.since, socket=self
            )
            self.rooms[frame.room] = SeqTracker(low=joined.last_seq)
            metrics.JOINS.labels(metrics.room_label(frame.room)).inc()
            if frame.since is not None:
                metrics.RESUMES.inc()
            metrics.FRAMES_OUT.labels("joined").inc()
            metrics.FRAMES_OUT.labels("presence").inc()
            self.outlet.write(joined.joined)
            self.outlet.write(joined.presence)
            while held:
                await self.forward(held.pop(0))
        finally:
            del self.joining[frame.room]

    async def on_leave(self, frame: protocol.LeaveFrame) -> None:
        self.require_joined(frame.room)
        del self.rooms[frame.room]
        await self.send_frame(await room_leave(actor=self.actor, slug=frame.room, socket=self))

    async def on_send(self, frame: protocol.SendFrame) -> None:
        self.require_joined(frame.room)
        submitting = message_submit(
            actor=self.actor,
            slug=frame.room,
            body=frame.body,
            client_id=frame.client_id,
            reply_to=frame.reply_to,
            attachment=frame.attachment,
            address=self.address,
            hold=self.hold,
        )
        # Answered in its turn, while the socket reads on: realtime/writes.py.
        if self.writes is None:
            self.writes = Writes(self.outlet)
        await self.writes.submit(submitting, ref=str(frame.client_id), hold=self.hold)

    async def on_dm(self, frame: protocol.DmFrame) -> None:
        ack = await dm_send(
            actor=self.actor,
            usernames=frame.users,
            body=frame.body,
            client_id=frame.client_id,
            address=self.address,
        )
        await self.send_frame(ack)

    async def on_block(self, frame: protocol.BlockFrame) -> None:
        blocks = await block_set(
            actor=self.actor, username=frame.user, on=frame.on, address=self.address
        )
        await self.send_frame(blocks)

    async def on_edit(self, frame: protocol.EditFrame) -> None:
        self.require_joined(frame.room)
        ack = await message_edit(
            actor=self.actor,
            slug=frame.room,
            seq=frame.seq,
            body=frame.body,
            client_id=frame.client_id,
            address=self.address,
            hold=self.hold,
        )
        await self.send_frame(ack)

    async def on_delete(self, frame: protocol.DeleteFrame) -> None:
        self.require_joined(frame.room)
        ack = await message_delete(
            actor=self.actor,
            slug=frame.room,
            seq=frame.seq,
            client_id=frame.client_id,
            address=self.address,
            hold=self.hold,
        )
        await self.send_frame(ack)

    async def on_react(self, frame: protocol.ReactFrame) -> None:
        self.require_joined(frame.room)
        ack = await reaction_set(
            actor=self.actor,
            slug=frame.room,
            seq=frame.seq,
            emoji=frame.emoji,
            on=frame.on,
            client_id=frame.client_id,
            address=self.address,
            hold=self.hold,
        )
        await self.send_frame(ack)

    async def on_moderate(self, frame: protocol.ModerateFrame) -> None:
        self.require_joined(frame.room)
        await room_moderate(
            slug=frame.room, actor=self.actor, moderation=frame, address=self.address
        )

    async def on_read(self, frame: protocol.ReadFrame) -> None:
        self.require_joined(frame.room)
        await read_marker_set(actor=self.actor, slug=frame.room, seq=frame.seq)

    async def on_history(self, frame: protocol.HistoryFrame) -> None:
        self.require_joined(frame.room)
        page = await history_page(
            actor=self.actor,
            slug=frame.room,
            before=frame.before,
            after=frame.after,
            limit=frame.limit,
        )
        tracker = self.rooms[frame.room]
        for message in page.messages:
            tracker.accept(message.seq)  # sent now: never again as a live message
        await self.send_frame(page)

    async def on_mentions(self, frame: protocol.MentionsFrame) -> None:
        await self.send_frame(
            await mentions_page(actor=self.actor, before=frame.before, limit=frame.limit)
        )

    async def on_search(self, frame: protocol.SearchFrame) -> None:
        found = await messages_search(
            actor=self.actor, q=frame.q, room=frame.room, before=frame.before, limit=frame.limit
        )
        await self.send_frame(found)

    async def on_typing(self, frame: protocol.TypingFrame) -> None:
        self.require_joined(frame.room)
        await typing_notify(actor=self.actor, slug=frame.room, channel=self.channel_name)

    async def on_ping(self, frame: protocol.PingFrame) -> None:
        await self.send_frame(protocol.PongEvent())

    # --- Events from the channel layer and the sweep -----------------------

    def deliver(self, event: events.RoomEvent, frame: Frame) -> bool:
        """A room's event, from the relay: write it unless this socket should
        skip it (or hold it while joining the room); True if written."""
        if (held := self.joining.get(event["room"])) is not None:
            held.append(event)
            return False
        return self._write(event, frame)

    def _write(self, event: events.RoomEvent, frame: Frame) -> bool:
        tracker = self.rooms.get(event["room"])
        if tracker is None or event["exclude"] == self.channel_name:
            return False
        if event["seq"] is not None and not tracker.accept(event["seq"]):
            return False  # already sent, in `joined` or by the sweep
        self.outlet.write(frame)
        return True

    async def forward(self, event: events.RoomGroupEvent) -> None:
        """An event held during a join, once `joined` is sent."""
        if event["type"] == "room.access":
            await sockets_recheck([self])
        elif self._write(event, Frame(event["text"])):
            metrics.FRAMES_OUT.labels(event["frame"]).inc()

    async def room_removed(self, event: events.RoomRemoved) -> None:
        """This user may no longer be in a room (`room_removed_broadcast`, or the
        sweep): leave it, and say why."""
        slug = event["room"]
        if self.rooms.pop(slug, None) is not None:
            left = await room_leave(
                actor=self.actor, slug=slug, socket=self, reason=event["reason"]
            )
            await self.send_frame(left)

    async def user_frame(self, event: events.UserFrame) -> None:
        """A frame for the user (`added`, `export`; `user_frame_broadcast`): pass it on."""
        self.outlet.write(Frame(event["text"]))

    async def credentials_revoked(self, event: events.CredentialsRevoked) -> None:
        """A token was revoked, a session ended or the user was deactivated
        (`credentials_revoked_broadcast`): close if this socket relied on it."""
        token, session = event["token_id"], event["session_key"]
        if (
            (token is None and session is None)
            or (token is not None and token == self.scope.get("token_id"))
            or (session is not None and session == self.session_key)
        ):
            await self.end_session(event["reason"])

    async def password_changed(self, event: events.PasswordChanged) -> None:
        """The user's password changed (`password_changed_broadcast`): a socket
        a session opened closes, unless its session made the change (and was
        renamed). A token's socket stays: tokens outlive a password change."""
        if self.session_key is None:
            return
        if self.session_key == event["kept_from"]:
            self.session_key = event["kept_to"]
        else:
            await self.end_session("the password was changed: sign in again")

    async def restart(self) -> None:
        """This process is stopping: the client should reconnect (to another one)."""
        await self.close(code=protocol.CloseCode.SERVICE_RESTART)

    async def end_session(self, detail: str) -> None:
        """Tell the client why, and close with 4401: its credentials no longer hold."""
        close = protocol.CloseCode.UNAUTHORIZED
        await self.refuse(protocol.ChatError(protocol.ErrorCode.UNAUTHORIZED, detail, close=close))

    async def fill(self, slug: str) -> None:
        """Send stored messages this socket missed: called by the sweep."""
        tracker = self.rooms[slug]
        page = await history_page(
            actor=self.actor, slug=slug, before=None, after=tracker.low, limit=None
        )
        for message in page.messages:
            if self.rooms.get(slug) is tracker and tracker.accept(message.seq):
                await self.send_frame(message)

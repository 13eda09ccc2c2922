"""/graphql/'s socket: GraphQL over the graphql-transport-ws protocol, on
the same path as the native socket's (chat/realtime/consumer.py).

It is a chat socket that speaks another language: the same handshake (the
Origin check, the session cookie or a bearer token, guests where allowed;
or a token in `connection_init`'s payload), the same caps on sockets, the
same joins, relay, sweep, access re-checks, credential closes and drain. A
`roomEvents` subscription is a join of the room: the relay hands it the
room's events as it does to every socket, and the SeqTracker keeps it
gapless and without duplicates, `since` included. Each event is executed
against a subscription's selection once per selection, whatever the number
of subscribers of that room asking for it (`Frame.views`), and written
through the same outlet, with the same slow-reader rule (4008).

Queries and mutations sent here run like those over HTTP, one at a time.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_operation_ast,
)
from graphql.execution import Executor, execute_subscription_event
from graphql.execution.values import get_argument_values
from strawberry.types import ExecutionResult as StrawberryResult

from chat import events, metrics, protocol
from chat.auth import token_authenticate
from chat.graphql.limits import document_check
from chat.graphql.schema import Context, graphql_error, schema
from chat.graphql.types import event_object
from chat.protocol.graphql_ws import (
    SUBPROTOCOL,
    Complete,
    ConnectionInit,
    GraphQLClose,
    Ping,
    Subscribe,
    parse_message,
)
from chat.realtime.consumer import ChatConsumer
from chat.realtime.outlet import Frame
from chat.realtime.rooms import room_join, room_leave
from chat.roomstate import SeqTracker
from chat.selectors.messages import history_page

logger = logging.getLogger(__name__)
# A client that has not sent connection_init by then is closed (4408).
INIT_SECONDS = 10.0


@dataclass(slots=True)
class Stream:
    """One subscription: its id, its operation ready to run on each event
    (graphql-core's Executor: the document, the variables coerced), and what
    shapes its events' payloads."""

    id: str
    executor: Executor
    # Subscriptions of the same shape get the same payload for an event.
    shape: tuple
    room: str | None = None  # roomEvents'; None for myEvents
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = '{"id":' + json.dumps(self.id) + ',"type":"next","payload":'


def _shape(source: str, operation: OperationDefinitionNode, variables: dict[str, Any]) -> tuple:
    """What an event's payload depends on: the document, and the variables
    other than the root field's arguments (`room` and `since` differ from
    subscriber to subscriber, and do not change the payload)."""
    root = operation.selection_set.selections[0]
    arguments = root.arguments if isinstance(root, FieldNode) else None
    own = {arg.value.name.value for arg in arguments or () if isinstance(arg.value, VariableNode)}
    rest = {name: value for name, value in variables.items() if name not in own}
    name = operation.name.value if operation.name else None
    return (source, name, json.dumps(rest, sort_keys=True, default=str))


class GraphQLConsumer(ChatConsumer):
    """One graphql-transport-ws socket: many operations, by id."""

    initialised = False

    async def connect(self) -> None:
        self.socket_open()
        self.streams: dict[str, Stream] = {}
        self.room_streams: dict[str, Stream] = {}  # slug -> its roomEvents
        self.mine: Stream | None = None  # myEvents
        if SUBPROTOCOL not in self.scope.get("subprotocols", ()):
            await self.accept()
            await self.close(code=GraphQLClose.SUBPROTOCOL_NOT_ACCEPTABLE)
            return
        await self.accept(subprotocol=SUBPROTOCOL)
        self.init_timer = self.loop.call_later(INIT_SECONDS, self._init_timeout)

    def _init_timeout(self) -> None:
        if not self.initialised and not self.gone:
            self.loop.create_task(self.close(code=GraphQLClose.INIT_TIMEOUT))

    async def disconnect(self, code: int) -> None:
        if (timer := getattr(self, "init_timer", None)) is not None:
            timer.cancel()
        await super().disconnect(code)

    async def refuse(self, error: protocol.ChatError) -> None:
        # The protocol has no error message outside an operation: the close's
        # reason says why (at most 123 bytes).
        reason = error.detail.encode()[:120].decode(errors="ignore")
        await self.close(code=error.close or GraphQLClose.FORBIDDEN, reason=reason)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.close(code=GraphQLClose.BAD_MESSAGE, reason="send JSON text frames")
        else:
            await self.handle_text(text_data)

    def _send(self, message: dict[str, Any]) -> None:
        self.outlet.write(Frame(json.dumps(message)))

    async def handle_text(self, text: str) -> None:
        message = parse_message(text)
        if message is None:
            await self.close(
                code=GraphQLClose.BAD_MESSAGE, reason="not a graphql-transport-ws message"
            )
        elif isinstance(message, ConnectionInit):
            await self.on_init(message)
        elif isinstance(message, Ping):
            self._send({"type": "pong"})
        elif not self.initialised:
            if not isinstance(message, Complete | Subscribe):
                return  # a pong
            await self.close(
                code=protocol.CloseCode.UNAUTHORIZED, reason="send connection_init first"
            )
        elif isinstance(message, Subscribe):
            try:
                await self.on_subscribe(message)
            except Exception:
                if self.faults.take() is None:
                    logger.exception("GraphQL operation failed")
                fault = protocol.ChatError(protocol.ErrorCode.INTERNAL_ERROR, "the server failed")
                self._errors(message.id, [GraphQLError(fault.detail, original_error=fault)])
        elif isinstance(message, Complete):
            await self.stream_end(message.id)

    async def on_init(self, message: ConnectionInit) -> None:
        if self.initialised:
            await self.close(
                code=GraphQLClose.TOO_MANY_INITS, reason="too many initialisation requests"
            )
            return
        payload = message.payload or {}
        credential = payload.get("Authorization") or payload.get("token")
        if credential is not None and self.scope.get("auth") == "none":
            header = str(credential)
            if not header.lower().startswith("bearer "):
                header = f"Bearer {header}"
            token = await token_authenticate(header)
            if token is None:
                await self.close(code=GraphQLClose.FORBIDDEN, reason="a bad or revoked token")
                return
            self.scope["user"], self.scope["auth"] = token.user, "token"
            self.scope["token_id"] = token.pk
        if not await self.admit():
            return
        self.initialised = True
        self.init_timer.cancel()
        self._send({"type": "connection_ack", "payload": {"user": self.actor.author.model_dump()}})

    def _errors(self, id_: str, errors: list[GraphQLError]) -> None:
        formatted = [graphql_error(e).formatted for e in errors]
        self._send({"id": id_, "type": "error", "payload": formatted})

    async def on_subscribe(self, message: Subscribe) -> None:
        id_, payload = message.id, message.payload
        if id_ in self.streams:
            await self.close(
                code=GraphQLClose.SUBSCRIBER_EXISTS, reason=f"subscriber for {id_} already exists"
            )
            return
        try:
            document = document_check(schema._schema, payload.query)
        except GraphQLError as error:
            self._errors(id_, [error])
            return
        operation = get_operation_ast(document, payload.operationName)
        if operation is None:
            self._errors(id_, [GraphQLError("name the operation to run (operationName)")])
            return
        if operation.operation != OperationType.SUBSCRIPTION:
            result = await schema.execute(
                payload.query,
                variable_values=payload.variables,
                context_value=Context(actor=self.actor, address=self.address),
                operation_name=payload.operationName,
            )
            self._result(id_, result)
            self._send({"id": id_, "type": "complete"})
            return
        variables = payload.variables or {}
        executor = Executor.build(
            schema._schema,
            document,
            context_value=Context(actor=self.actor, address=self.address),
            raw_variable_values=variables,
            operation_name=payload.operationName,
        )
        if isinstance(executor, list):  # the variables do not fit the document
            self._errors(id_, executor)
            return
        stream = Stream(
            id=id_, executor=executor, shape=_shape(payload.query, operation, variables)
        )
        try:
            await self.stream_start(stream, operation)
        except GraphQLError as error:  # an argument of the wrong type
            self._errors(id_, [error])
        except protocol.ChatError as error:
            self._errors(id_, [GraphQLError(error.detail, original_error=error)])

    def _result(self, id_: str, result: StrawberryResult) -> None:
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        self._send({"id": id_, "type": "next", "payload": body})

    async def stream_start(self, stream: Stream, operation: OperationDefinitionNode) -> None:
        """Start a subscription: `myEvents`, or the join of `roomEvents`' room."""
        if len(self.streams) > settings.CHAT_MAX_ROOMS_PER_SOCKET:
            raise protocol.ChatError(
                protocol.ErrorCode.BAD_REQUEST,
                f"a socket may hold at most {settings.CHAT_MAX_ROOMS_PER_SOCKET + 1} subscriptions",
            )
        root = operation.selection_set.selections[0]
        assert isinstance(root, FieldNode)  # a subscription has one root field (validated)
        if root.name.value == "myEvents":
            if self.actor.user_id is None:
                raise protocol.ChatError(
                    protocol.ErrorCode.FORBIDDEN, "sign in to follow your events"
                )
            if self.mine is not None:
                raise protocol.ChatError(
                    protocol.ErrorCode.BAD_REQUEST, "myEvents is followed already"
                )
            self.streams[stream.id] = self.mine = stream
            return
        definition = schema._schema.subscription_type.fields["roomEvents"]  # type: ignore[union-attr]
        args = get_argument_values(definition, root, stream.executor.variable_values)
        join = protocol.parse_frame(
            json.dumps({"type": "join", "room": args["room"], "since": args.get("since")})
        )
        assert isinstance(join, protocol.JoinFrame)
        slug = stream.room = join.room
        if slug in self.room_streams:
            raise protocol.ChatError(
                protocol.ErrorCode.BAD_REQUEST, f"room '{slug}' is followed already"
            )
        self.streams[stream.id] = self.room_streams[slug] = stream
        held = self.joining[slug] = []
        try:
            joined = await room_join(actor=self.actor, slug=slug, since=join.since, socket=self)
            tracker = self.rooms[slug] = SeqTracker(low=joined.last_seq)
            metrics.JOINS.labels(metrics.room_label(slug)).inc()
            if join.since is not None:
                metrics.RESUMES.inc()
                page = json.loads(joined.joined.text)
                await self._catch_up(stream, page, tracker, since=join.since)
            self._emit(stream, joined.presence)
            while held:
                await self.forward(held.pop(0))
        except BaseException:
            self.streams.pop(stream.id, None)
            self.room_streams.pop(slug, None)
            raise
        finally:
            del self.joining[slug]

    async def _catch_up(
        self, stream: Stream, joined: dict, tracker: SeqTracker, *, since: int
    ) -> None:
        """What the subscriber missed after `since`: the join's page, then the
        history's pages up to what was committed when it joined (what
        commits later comes live, held until this is sent)."""
        page, after, complete = joined["messages"], since, joined["complete"]
        while True:
            for message in page:
                after = message["seq"]
                if after <= tracker.low or tracker.accept(after):
                    self._emit(stream, Frame(json.dumps(message)))
            if complete or not page or after >= tracker.low:
                return
            more = await history_page(
                actor=self.actor, slug=stream.room or "", before=None, after=after, limit=None
            )
            page = [m.model_dump(mode="json") for m in more.messages]
            complete = more.complete

    def _emit(self, stream: Stream, frame: Frame) -> None:
        """Write a server frame to a subscription as its `next`, executed for
        the subscription's shape once per frame."""
        views = frame.views
        if views is None:
            views = frame.views = {}
        payload = views.get(stream.shape)
        if payload is None:
            payload = views[stream.shape] = self._execute(stream, frame)
        if payload:
            self.outlet.write(Frame(stream.prefix + payload + "}"))

    def _execute(self, stream: Stream, frame: Frame) -> str:
        try:
            root = event_object(frame.text)
            if root is None:
                return ""  # nothing a subscription streams
            result = execute_subscription_event(stream.executor.build_per_event_executor(root))
        except Exception:  # a fault here must not stop the relay's fan-out
            if self.faults.take() is None:
                logger.exception("GraphQL event failed")
            return ""
        assert isinstance(result, ExecutionResult)  # the event types resolve synchronously
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [graphql_error(e).formatted for e in result.errors]
        return json.dumps(body)

    async def stream_end(self, id_: str) -> None:
        """The client completed a subscription: leave its room."""
        stream = self.streams.pop(id_, None)
        if stream is None:
            return
        if stream is self.mine:
            self.mine = None
        elif stream.room is not None and self.room_streams.pop(stream.room, None) is stream:
            if self.rooms.pop(stream.room, None) is not None:
                await room_leave(actor=self.actor, slug=stream.room, socket=self)

    # --- What the chat socket's machinery sends ------------------------------

    def _write(self, event: events.RoomEvent, frame: Frame) -> bool:
        tracker = self.rooms.get(event["room"])
        stream = self.room_streams.get(event["room"])
        if tracker is None or stream is None or event["exclude"] == self.channel_name:
            return False
        if event["seq"] is not None and not tracker.accept(event["seq"]):
            return False
        self._emit(stream, frame)
        return True

    async def send_frame(self, frame: protocol.ServerFrame) -> None:
        """A frame of the sweep (a missed message) or of an access change
        (`left`): to the room's subscription; `left` completes it."""
        slug = getattr(frame, "room", None)
        stream = self.room_streams.get(slug) if isinstance(slug, str) else None
        if stream is None:
            return
        metrics.FRAMES_OUT.labels(frame.type).inc()
        self._emit(stream, Frame(protocol.encode(frame)))
        if frame.type == "left":
            self.streams.pop(stream.id, None)
            del self.room_streams[stream.room or ""]
            self._send({"id": stream.id, "type": "complete"})

    async def user_frame(self, event: events.UserFrame) -> None:
        if self.mine is not None:
            self._emit(self.mine, Frame(event["text"]))

"""The graphql-transport-ws protocol of /graphql/'s socket (the GraphQL over
WebSocket protocol of the `graphql-ws` library): its client messages, parsed
in one place, and its close codes. Sans-I/O."""

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SUBPROTOCOL = "graphql-transport-ws"


class GraphQLClose(IntEnum):
    """The protocol's own close codes (the chat's are used besides: 4401, 4008, 1012)."""

    BAD_MESSAGE = 4400
    FORBIDDEN = 4403
    SUBPROTOCOL_NOT_ACCEPTABLE = 4406
    INIT_TIMEOUT = 4408
    SUBSCRIBER_EXISTS = 4409
    TOO_MANY_INITS = 4429


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConnectionInit(_Message):
    """The first message. `payload` may carry an API token, as `token` or
    `Authorization` ("Bearer <token>"), for clients that cannot set headers."""

    type: Literal["connection_init"]
    payload: dict[str, Any] | None = None


class Ping(_Message):
    type: Literal["ping"]
    payload: dict[str, Any] | None = None


class Pong(_Message):
    type: Literal["pong"]
    payload: dict[str, Any] | None = None


class SubscribePayload(_Message):
    query: Annotated[str, Field(max_length=20_000)]
    variables: dict[str, Any] | None = None
    operationName: str | None = None  # the wire's name


class Subscribe(_Message):
    """Start an operation: a subscription streams `next`s; a query or a
    mutation answers one `next`, then `complete`."""

    type: Literal["subscribe"]
    id: Annotated[str, Field(min_length=1, max_length=64)]
    payload: SubscribePayload


class Complete(_Message):
    type: Literal["complete"]
    id: Annotated[str, Field(min_length=1, max_length=64)]


ClientMessage = Annotated[
    ConnectionInit | Ping | Pong | Subscribe | Complete, Field(discriminator="type")
]
_messages: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def parse_message(text: str) -> ClientMessage | None:
    """The client's message, or None if it is not one (the socket closes with 4400)."""
    try:
        return _messages.validate_json(text)
    except ValidationError:
        return None

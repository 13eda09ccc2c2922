"""The GraphQL schema's object types: views of the protocol's own models
(chat/protocol/outbound.py), field for field, so a GraphQL client reads what
a socket or REST client reads, named in camelCase."""

import json
from typing import Annotated

import strawberry
from strawberry.experimental.pydantic import type as from_model

from chat import protocol


@from_model(model=protocol.Author, all_fields=True)
class Author:
    pass


@from_model(model=protocol.Quote, all_fields=True)
class Quote:
    pass


@from_model(model=protocol.ReactionOut, all_fields=True, name="Reaction")
class Reaction:
    pass


@from_model(model=protocol.PreviewOut, all_fields=True, name="Preview")
class Preview:
    pass


@from_model(model=protocol.AttachmentOut, all_fields=True, name="Attachment")
class Attachment:
    pass


@from_model(
    model=protocol.MessageOut,
    name="Message",
    description=(
        "A room's entry: a message, or an edit, delete or reaction of one (`kind`, with `target` "
        "the message's seq). A deleted message's body is empty."
    ),
)
class Message:
    """A room's entry: a message, or an edit, delete or reaction of one
    (`kind`, with `target` the message's seq). A deleted message's body is empty."""

    kind: strawberry.auto
    target: strawberry.auto
    room: strawberry.auto
    seq: strawberry.auto
    id: strawberry.auto
    author: strawberry.auto
    body: strawberry.auto
    client_id: strawberry.auto
    created: strawberry.auto
    edited: strawberry.auto
    deleted: strawberry.auto
    reply_to: strawberry.auto
    quote: strawberry.auto
    reactions: strawberry.auto
    mentions: strawberry.auto
    preview: strawberry.auto
    attachment: strawberry.auto


@from_model(model=protocol.MemberOut, all_fields=True, name="Member")
class Member:
    pass


@from_model(
    model=protocol.AckEvent,
    name="Ack",
    description="A write committed: its entry's seq in `room` (a DM's slug for a DM).",
)
class Ack:
    """A write committed: its entry's seq in `room` (a DM's slug for a DM)."""

    client_id: strawberry.auto
    room: strawberry.auto
    seq: strawberry.auto


@from_model(model=protocol.BlocksEvent, name="Blocks", description="The users the caller blocks.")
class Blocks:
    """The users the caller blocks."""

    users: strawberry.auto


@from_model(model=protocol.ModeratedEvent, name="Moderated")
class Moderated:
    room: strawberry.auto
    action: strawberry.auto
    user: strawberry.auto
    by: strawberry.auto
    until: strawberry.auto
    reason: strawberry.auto


@from_model(model=protocol.ExportEvent, name="Export")
class Export:
    id: strawberry.auto
    room: strawberry.auto
    state: strawberry.auto
    done: strawberry.auto
    total: strawberry.auto
    url: strawberry.auto
    expires: strawberry.auto


@from_model(
    model=protocol.PresenceEvent,
    name="Presence",
    description="Who is online in the room: a snapshot (`online`) or a diff (`joined`, `left`).",
)
class Presence:
    """Who is online in the room: a snapshot (`online`) or a diff (`joined`, `left`)."""

    room: strawberry.auto
    online: strawberry.auto
    joined: strawberry.auto
    left: strawberry.auto
    count: strawberry.auto


@from_model(model=protocol.TypingEvent, name="Typing")
class Typing:
    room: strawberry.auto
    user: strawberry.auto


@from_model(
    model=protocol.LeftEvent,
    name="Left",
    description=(
        "The subscriber is out of the room (kicked, banned, the room made private, or left); the "
        "subscription completes after it."
    ),
)
class Left:
    """The subscriber is out of the room (kicked, banned, the room made
    private, or left); the subscription completes after it."""

    room: strawberry.auto
    reason: strawberry.auto


@from_model(
    model=protocol.AddedEvent,
    name="Added",
    description="The caller was added to a room: invited, or a DM started with them.",
)
class Added:
    room: strawberry.auto
    title: strawberry.auto
    kind: strawberry.auto
    members: strawberry.auto


@strawberry.type
class Me:
    name: str
    guest: bool


RoomEvent = Annotated[Message | Presence | Typing | Moderated | Left, strawberry.union("RoomEvent")]
MyEvent = Annotated[Added | Export, strawberry.union("MyEvent")]

# The frames a subscription streams, by their `type`: a frame is turned into
# its GraphQL object once for all subscribers (chat/realtime/graphql.py).
EVENT_TYPES: dict[str, tuple[type, type]] = {
    "message": (protocol.MessageOut, Message),
    "presence": (protocol.PresenceEvent, Presence),
    "typing": (protocol.TypingEvent, Typing),
    "moderated": (protocol.ModeratedEvent, Moderated),
    "left": (protocol.LeftEvent, Left),
    "added": (protocol.AddedEvent, Added),
    "export": (protocol.ExportEvent, Export),
}


def event_object(text: str) -> object | None:
    """The GraphQL object of a server frame's JSON text, or None for a frame
    no subscription streams."""
    kinds = EVENT_TYPES.get(json.loads(text).get("type", ""))
    if kinds is None:
        return None
    model, graphql_type = kinds
    return graphql_type.from_pydantic(model.model_validate_json(text))  # type: ignore[attr-defined]

"""The channel layer's events: each builder makes exactly its type's fields,
and every event has the handler its `type` names (Channels maps
"room.removed" to `room_removed`)."""

from typing import get_args, get_type_hints

import pytest

from chat import events
from chat.protocol import LeftReason
from chat.realtime.consumer import ChatConsumer

BUILT = [
    (
        events.room_event(room="r", frame="message", text="{}", seq=1, exclude=None),
        events.RoomEvent,
    ),
    (events.room_access(room="r", user_id=None), events.RoomAccess),
    (events.room_removed(user_id=1, room="r", reason=LeftReason.BAN), events.RoomRemoved),
    (events.user_frame(user_id=1, text="{}"), events.UserFrame),
    (
        events.credentials_revoked(user_id=1, reason="x", token_id=1, session_key=None),
        events.CredentialsRevoked,
    ),
    (events.password_changed(user_id=1, kept_from="a", kept_to="b"), events.PasswordChanged),
]


@pytest.mark.parametrize(("event", "kind"), BUILT, ids=lambda v: getattr(v, "__name__", ""))
def test_each_builder_makes_exactly_its_events_fields(event, kind):
    assert set(event) == set(get_type_hints(kind))
    assert event["type"] in get_args(get_type_hints(kind)["type"])


def types_of(union) -> list[str]:
    return [t for kind in get_args(union) for t in get_args(get_type_hints(kind)["type"])]


def test_every_user_group_event_has_its_consumer_handler():
    for kind in types_of(events.UserGroupEvent):
        assert callable(getattr(ChatConsumer, kind.replace(".", "_"))), kind


def test_every_room_group_event_is_delivered_or_handled_by_the_relay():
    # The relay fans room.event out to each socket's `deliver`, and checks
    # its sockets again on room.access (a socket joining holds it).
    from chat.realtime.relay import Relay

    assert types_of(events.RoomGroupEvent) == ["room.event", "room.access"]
    assert callable(ChatConsumer.deliver) and callable(Relay.access_check)

"""10,000 generated hostile frames against a real server process: it stays up,
answers every frame it cannot use with an `error` (and everything it sends
matches the published schema), writes nothing for invalid frames, and the
socket still works afterwards."""

import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from chat import protocol
from chat.models import Message
from tests.conftest import TIMEOUT, check_server_frame
from tests.factories import room_make

pytestmark = pytest.mark.django_db(transaction=True)
# Hostile frames per run; FUZZ_EXAMPLES=100000 for a deeper search.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
field_values = (
    json_values
    | st.sampled_from(["lobby", "den", "", " ", "a" * 51, "LOBBY", "lobby\x00", "\u202e", "💬"])
    | st.sampled_from([0, -1, 2**63, 2**63 - 1, 1e308, "1", str(uuid.uuid4()), "x" * 5000])
)
# Frames shaped like the protocol's, with wrong, missing, extra or strange fields.
framelike = st.fixed_dictionaries(
    {"type": st.sampled_from([*protocol.CLIENT_FRAME_TYPES, "JOIN", "", "hello", "error"])},
    optional={
        key: field_values
        for key in ("room", "body", "client_id", "seq", "since", "before", "after", "limit", "x")
    },
)
text_frames = (
    framelike.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=200)  # not JSON, or truncated JSON
    | framelike.map(lambda frame: json.dumps(frame)[: len(json.dumps(frame)) // 2])
    # Under daphne's 64 KiB limit (over it, daphne drops the connection), over the body's.
    | st.just('{"type": "send", "room": "lobby", "body": "' + "x" * 65_000 + '"}')
)
binary_frames = st.binary(max_size=64) | st.just("é".encode()[:1])  # truncated UTF-8
frames = text_frames | binary_frames


def local_verdict(frame: str | bytes) -> protocol.AnyClientFrame | None:
    """What parse_frame makes of it: a frame, or None if the server must refuse it."""
    if isinstance(frame, bytes):
        return None
    try:
        return protocol.parse_frame(frame)
    except protocol.ChatError:
        return None


@pytest.fixture
def socket(start_server, make_user):
    room_make(slug="lobby", creator=make_user("owner"))
    server = start_server()
    # No keepalive: its pings draw on the global `random` from another thread,
    # which Hypothesis takes for a strategy using `random` and warns about.
    url = server.ws_url + "?name=fuzzer"
    with connect(url, open_timeout=TIMEOUT, max_size=None, ping_interval=None) as ws:
        assert json.loads(ws.recv(TIMEOUT))["type"] == "hello"
        ws.send(json.dumps({"type": "join", "room": "lobby"}))
        assert json.loads(ws.recv(TIMEOUT))["type"] == "joined"
        yield server, ws


def test_hostile_frames(socket):
    server, ws = socket
    stored = set()  # client_ids of valid sends the server should store
    sent = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(frame=frames)
    def one(frame: str | bytes) -> None:
        parsed = local_verdict(frame)
        ws.send(frame)
        sent.append(parsed)
        # A marker: an unknown frame whose error echoes a ref of its own, so
        # the replies to `frame` are exactly those before the marker's error.
        marker = f"marker-{uuid.uuid4()}"
        ws.send(json.dumps({"type": "marker", "client_id": marker}))
        replies = []
        while (reply := json.loads(ws.recv(TIMEOUT))).get("ref") != marker:
            check_server_frame(reply)
            replies.append(reply)
        if parsed is None:
            assert [r["type"] for r in replies if r["type"] == "error"], (frame, replies)
        elif parsed.type == "send" and not any(r["type"] == "error" for r in replies):
            stored.add(parsed.client_id)

    one()
    assert len(sent) >= EXAMPLES and sum(p is None for p in sent) > EXAMPLES * 0.9
    assert server.proc.poll() is None  # still up
    rows = set(Message.objects.values_list("client_id", flat=True))
    assert rows == stored  # nothing written for an invalid frame
    client_id = str(uuid.uuid4())
    ws.send(json.dumps({"type": "send", "room": "lobby", "body": "after", "client_id": client_id}))
    replies = [json.loads(ws.recv(TIMEOUT)) for _ in range(2)]
    assert {r["type"] for r in replies} == {"ack", "message"}

"""parse_frame and the outbound frames: no database, no sockets."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from chat import protocol
from chat.protocol import ChatError, ErrorCode, parse_frame

CID = "6f1c1c2e-8a4b-4c38-9d55-3f9f8b1e7a10"


def send(**fields):
    frame = {"type": "send", "room": "lobby", "body": "hi", "client_id": CID, **fields}
    return json.dumps(frame, ensure_ascii=False)


def error_of(text: str) -> ChatError:
    with pytest.raises(ChatError) as info:
        parse_frame(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "frame_type"),
    [
        ('{"type":"join","room":"lobby"}', protocol.JoinFrame),
        ('{"type":"join","room":"lobby","since":41}', protocol.JoinFrame),
        ('{"type":"leave","room":"lobby"}', protocol.LeaveFrame),
        (send(), protocol.SendFrame),
        ('{"type":"history","room":"lobby","before":100,"limit":50}', protocol.HistoryFrame),
        ('{"type":"history","room":"lobby","after":3}', protocol.HistoryFrame),
        ('{"type":"typing","room":"lobby"}', protocol.TypingFrame),
        ('{"type":"ping"}', protocol.PingFrame),
        (
            f'{{"type":"edit","room":"lobby","seq":3,"body":"fixed","client_id":"{CID}"}}',
            protocol.EditFrame,
        ),
        (f'{{"type":"delete","room":"lobby","seq":3,"client_id":"{CID}"}}', protocol.DeleteFrame),
        ('{"type":"read","room":"lobby","seq":0}', protocol.ReadFrame),
    ],
)
def test_valid_frames_parse_to_their_type(text, frame_type):
    assert isinstance(parse_frame(text), frame_type)


def test_send_fields_are_typed():
    frame = parse_frame(send(body="héllo ✓"))
    assert frame.client_id == uuid.UUID(CID)
    assert frame.body == "héllo ✓"


@pytest.mark.parametrize(
    ("text", "code", "detail", "ref"),
    [
        ("{", ErrorCode.BAD_REQUEST, "Invalid JSON", None),
        ("[1, 2]", ErrorCode.BAD_REQUEST, "JSON object", None),
        ('"join"', ErrorCode.BAD_REQUEST, "JSON object", None),
        ('{"room":"lobby"}', ErrorCode.BAD_REQUEST, "missing field 'type'", None),
        ('{"type":"shout"}', ErrorCode.BAD_REQUEST, "unknown frame type", "shout"),
        ('{"type":7}', ErrorCode.BAD_REQUEST, "unknown frame type", None),
        ('{"type":"join"}', ErrorCode.BAD_REQUEST, "room: Field required", "join"),
        ('{"type":"join","room":"Lobby"}', ErrorCode.BAD_REQUEST, "room: not allowed", "join"),
        ('{"type":"join","room":"a/b"}', ErrorCode.BAD_REQUEST, "room: not allowed", "join"),
        ('{"type":"join","room":"' + "a" * 51 + '"}', ErrorCode.BAD_REQUEST, "room:", "join"),
        ('{"type":"join","room":"lobby","since":"4"}', ErrorCode.BAD_REQUEST, "since:", "join"),
        ('{"type":"join","room":"lobby","since":true}', ErrorCode.BAD_REQUEST, "since:", "join"),
        ('{"type":"join","room":"lobby","since":-1}', ErrorCode.BAD_REQUEST, "since:", "join"),
        ('{"type":"join","room":"lobby","since":1e30}', ErrorCode.BAD_REQUEST, "since:", "join"),
        ('{"type":"ping","extra":1}', ErrorCode.BAD_REQUEST, "extra: Extra inputs", "ping"),
        # Each pattern says what it allows: a username is not told a room slug's rule.
        (
            json.dumps({"type": "dm", "users": ["bad name!"], "body": "hi", "client_id": CID}),
            ErrorCode.BAD_REQUEST,
            "users.0: not a username: use letters, digits",
            CID,
        ),
        (
            '{"type":"block","user":"a b","on":true}',
            ErrorCode.BAD_REQUEST,
            "not a username",
            "block",
        ),
        # Deeper than MAX_FRAME_DEPTH: refused before parsing, not a RecursionError.
        ("[" * 1500 + "]" * 1500, ErrorCode.BAD_REQUEST, "nested deeper than 32 levels", None),
        (
            '{"type":"send","x":' + "[" * 40 + "]" * 40 + "}",
            ErrorCode.BAD_REQUEST,
            "nested deeper",
            None,
        ),
        (send(body=""), ErrorCode.BAD_REQUEST, "body:", CID),
        (send(body=" \n\t "), ErrorCode.BAD_REQUEST, "body: must not be empty", CID),
        (send(body="a\u0000b"), ErrorCode.BAD_REQUEST, "body: must not contain NUL", CID),
        (send(body="x" * 4001), ErrorCode.TOO_LARGE, "body: String should have at most 4000", CID),
        (send(client_id="not-a-uuid"), ErrorCode.BAD_REQUEST, "client_id:", "not-a-uuid"),
        (send(client_id=None), ErrorCode.BAD_REQUEST, "client_id:", "send"),
        ('{"type":"send","room":"lobby","body":"hi"}', ErrorCode.BAD_REQUEST, "client_id", "send"),
        (
            '{"type":"history","room":"lobby","before":5,"after":1}',
            ErrorCode.BAD_REQUEST,
            "before or after, not both",
            "history",
        ),
        (
            '{"type":"history","room":"lobby","limit":101}',
            ErrorCode.BAD_REQUEST,
            "limit:",
            "history",
        ),
        (
            '{"type":"history","room":"lobby","before":0}',
            ErrorCode.BAD_REQUEST,
            "before:",
            "history",
        ),
    ],
)
def test_invalid_frames_raise_precise_errors(text, code, detail, ref):
    error = error_of(text)
    assert error.code == code
    assert detail in error.detail
    assert error.ref == ref


def test_body_of_exactly_the_limit_is_allowed():
    assert len(parse_frame(send(body="x" * protocol.MAX_BODY_CHARS)).body) == 4000


def test_frames_over_64_kib_are_too_large_before_parsing():
    text = send(body="x" * (protocol.MAX_FRAME_BYTES + 1))
    assert error_of(text).code == ErrorCode.TOO_LARGE
    assert "frame exceeds 65536 bytes" in error_of(text).detail


def test_size_limit_counts_utf8_bytes_not_characters():
    # 20,000 four-byte characters: 80,000 bytes although only 20,000 characters.
    text = send(body="😀" * 20_000)
    assert len(text) < protocol.MAX_FRAME_BYTES
    assert "frame exceeds" in error_of(text).detail


def test_lone_surrogates_are_refused():
    text = f'{{"type":"send","room":"lobby","body":"\\ud800","client_id":"{CID}"}}'
    assert error_of(text).code == ErrorCode.BAD_REQUEST


@pytest.mark.parametrize("name", ["ada", "Ada_L.2", "x" * 32])
def test_guest_names_allowed(name):
    assert protocol.parse_guest_name(name) == name


@pytest.mark.parametrize("name", ["", "-ada", "a b", "<b>", "x" * 33, "ädä"])
def test_guest_names_refused(name):
    with pytest.raises(ChatError) as info:
        protocol.parse_guest_name(name)
    assert info.value.code == ErrorCode.BAD_REQUEST


def test_outbound_frames_encode_every_field():
    error = protocol.ChatError(ErrorCode.RATE_LIMITED, "slow down", ref=CID, retry_after=0.5)
    assert json.loads(protocol.encode(protocol.error_event(error))) == {
        "type": "error",
        "code": "rate_limited",
        "detail": "slow down",
        "ref": CID,
        "retry_after": 0.5,
    }
    assert json.loads(protocol.encode(protocol.PongEvent())) == {"type": "pong"}


def test_pages_are_cut_to_fit_one_frame_keeping_the_end_asked_for():
    from datetime import UTC, datetime

    def message(seq: int) -> protocol.MessageOut:
        return protocol.MessageOut(
            room="r", seq=seq, id=seq, author=protocol.Author(name="a", guest=False),
            body="é" * protocol.MAX_BODY_CHARS, client_id=uuid.uuid4(), created=datetime.now(UTC),
        )  # fmt: skip

    page = [message(seq) for seq in range(1, 51)]
    newest = protocol.fit_page(page, oldest=False)
    oldest = protocol.fit_page(page, oldest=True)
    assert 1 < len(newest) < 50 and newest[-1].seq == 50
    assert oldest[0].seq == 1 and len(oldest) == len(newest)
    frame = protocol.HistoryEvent(room="r", messages=newest, complete=False)
    assert len(protocol.encode(frame).encode()) <= protocol.MAX_FRAME_BYTES
    assert protocol.fit_page(page[:3], oldest=True) == page[:3]  # small pages are whole


def react(emoji, **fields):
    frame = {"type": "react", "room": "lobby", "seq": 3, "emoji": emoji, "on": True,
             "client_id": CID, **fields}  # fmt: skip
    return json.dumps(frame, ensure_ascii=False)


@pytest.mark.parametrize(
    "emoji",
    ["👍", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "✔"],
    ids=["plain", "variation", "skin-tone", "zwj-family", "flag", "keycap", "tag-flag", "dingbat"],
)
def test_a_reaction_is_any_one_emoji(emoji):
    frame = parse_frame(react(emoji))
    assert (frame.emoji, frame.on, frame.seq) == (emoji, True, 3)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (react("lol"), "emoji: must be one emoji"),
        (react("👍 nice"), "emoji: must be one emoji"),
        (react("1"), "emoji: must be one emoji"),
        (react("\u200d"), "emoji: must be one emoji"),
        (react(""), "emoji: String should have at least 1"),
        (react("👍" * 17), "emoji: String should have at most 16"),
        (react("👍", on="yes"), "on:"),
        (react("👍", seq=0), "seq:"),
    ],
)
def test_a_reaction_that_is_not_one_emoji_is_refused(text, detail):
    error = error_of(text)
    assert (error.code, error.ref) in {(ErrorCode.BAD_REQUEST, CID), (ErrorCode.TOO_LARGE, CID)}
    assert error.detail.startswith(detail), error.detail


def test_reply_to_is_a_message_seq():
    assert parse_frame(send(reply_to=4)).reply_to == 4
    assert parse_frame(send()).reply_to is None
    assert error_of(send(reply_to=0)).detail.startswith("reply_to:")
    assert error_of(send(reply_to="4")).detail.startswith("reply_to:")


def test_the_users_of_a_dm_are_usernames():
    frame = {"type": "dm", "users": ["bob", "c.d@x"], "body": "x", "client_id": CID}
    assert parse_frame(json.dumps(frame)).users == ["bob", "c.d@x"]
    error = error_of(json.dumps(frame | {"users": ["bob smith"]}))
    assert error.detail.startswith("users.0:")
    error = error_of(json.dumps(frame | {"users": [f"u{i}" for i in range(8)]}))
    assert (error.code, error.detail[:6]) == (ErrorCode.TOO_LARGE, "users:")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("@bob hi", ["bob"]),
        ("hi @bob, @ada. and (@zed)!", ["bob", "ada", "zed"]),
        ("mail me@example.com or @c.d@x", ["c.d@x"]),
        ("@bob @bob @BOB", ["bob", "BOB"]),
        ("@ @- @. no names", []),
        (" ".join(f"@u{i}" for i in range(30)), [f"u{i}" for i in range(protocol.MAX_MENTIONS)]),
    ],
)
def test_mentions_are_at_names_that_end_in_a_letter_or_digit(body, names):
    assert protocol.mentioned_names(body) == names


def test_the_cli_shows_each_kind_of_entry_on_one_line():
    from chat_client.cli import format_message

    base = json.loads(
        protocol.MessageOut(
            room="lobby", seq=5, id=9, author=protocol.Author(name="ada", guest=False), body="hi",
            client_id=uuid.UUID(CID), created=datetime(2026, 11, 24, 17, 42, tzinfo=UTC),
        ).model_dump_json()
    )  # fmt: skip
    attachment = {"id": 1, "name": "a.png", "content_type": "image/png", "size": 3,
                  "image": True, "url": "/attachments/1/a.png"}  # fmt: skip
    preview = {"url": "https://e.com", "title": "E", "description": "", "image": ""}
    lines = [
        format_message(base | {"reply_to": 2, "attachment": attachment}),
        format_message(base | {"kind": "react", "target": 2, "body": "👍"}),
        format_message(base | {"kind": "unreact", "target": 2, "body": "👍"}),
        format_message(base | {"kind": "preview", "target": 2, "preview": preview}),
        format_message(base | {"kind": "delete", "target": 2, "body": ""}),
    ]
    assert [line.split("] ", 1)[1] for line in lines if line] == [
        "ada: (re #2) hi [a.png: /attachments/1/a.png]",
        "ada reacted 👍 on #2",
        "ada took back 👍 on #2",
        "#2 links to: E",
        "ada deleted #2",
    ]
    # A deleted message is told once, by its delete entry: not as an empty line.
    assert format_message(base | {"body": "", "deleted": True}) is None
    # Times: the locale's format, or ISO 8601 for scripts.
    iso = format_message(base, iso=True)
    assert iso is not None and iso.startswith("[2026-11-24T") and iso.endswith("] ada: hi")


def test_the_clis_help_says_who_it_is_without_a_token_or_a_guest_name():
    from chat_client.cli import _parser

    text = " ".join(_parser().format_help().split())
    assert "with neither --token nor --guest, the client enters as a guest" in text
    assert "guest-xxxxxx" in text and "--iso" in text

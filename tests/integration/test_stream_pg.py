"""The send path's native writer (chat/services/stream_pg.py) against the
migrated PostgreSQL: the same rows, answers and refusals as the ORM's."""

import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.apps import apps
from django.utils import timezone

from chat import protocol
from chat.actor import Actor
from chat.models import Message, Sanction
from chat.services import stream_pg
from chat.services.stream import StreamAppend
from chat.services.stream_pg import messages_store_pg, stream_append
from tests.factories import member_make, room_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_every_column_the_statements_name_is_a_models_column():
    # The models are the schema's source of truth: a column renamed there
    # must be renamed here too (and the tests below run the statements).
    models = {m._meta.db_table: m for m in apps.get_app_config("chat").get_models()}
    models["chat_block"] = apps.get_model("chat", "Block")
    for table, columns in stream_pg.COLUMNS.items():
        model = models[table]
        have = {field.column for field in model._meta.concrete_fields}
        assert set(columns.split()) <= have, (table, set(columns.split()) - have)
    statements = " ".join(
        getattr(stream_pg, name) for name in ("LOCK", "MEMBERS", "SANCTIONS", "BLOCKED", "STORED",
                                              "REPLIED", "INSERT", "BUMP")
    )  # fmt: skip
    for table in stream_pg.COLUMNS:
        assert table in statements


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def lobby(owner):
    return room_make(slug="lobby", creator=owner)


def append(room, actor, body="hi", client_id=None, **fields):
    return StreamAppend(
        room_id=room.pk, actor=actor, body=body, client_id=client_id or uuid.uuid4(), **fields
    )


async def test_a_batch_gets_gapless_seqs_and_rows_like_the_orms(lobby, owner):
    guest, user = Actor(name="gus"), Actor(name="owner", user=owner)
    results = await messages_store_pg(
        appends=[append(lobby, guest, "one"), append(lobby, user, "two"), append(lobby, guest)]
    )
    assert [(entry.seq, created) for entry, created in results] == [(1, True), (2, True), (3, True)]
    rows = [
        row
        async for row in Message.objects.order_by("seq").values(
            "seq", "kind", "author_id", "author_name", "body", "deleted", "reacted", "created"
        )
    ]
    assert [(r["seq"], r["author_id"], r["author_name"], r["body"]) for r in rows[:2]] == [
        (1, None, "gus", "one"),
        (2, owner.pk, "owner", "two"),
    ]
    assert all(r["kind"] == "message" and not r["deleted"] and r["created"] for r in rows)
    await lobby.arefresh_from_db()
    assert lobby.last_seq == 3
    assert [entry.pk for entry, _ in results] == [
        pk async for pk in Message.objects.order_by("seq").values_list("pk", flat=True)
    ]


async def test_a_resend_is_answered_with_its_first_seq_and_another_author_is_refused(lobby):
    first = append(lobby, Actor(name="gus"))
    [(entry, _)] = await messages_store_pg(appends=[first])
    again, stolen = await messages_store_pg(
        appends=[first, append(lobby, Actor(name="eve"), client_id=first.client_id)]
    )
    assert (again[0].seq, again[1]) == (entry.seq, False)
    assert isinstance(stolen, protocol.ChatError) and stolen.code == "bad_request"
    assert await Message.objects.acount() == 1


async def test_refusals_under_the_lock_write_nothing_and_leave_the_rest(owner, make_user):
    private = await database_sync_to_async(room_make)(slug="den", creator=owner, private=True)
    muted = await database_sync_to_async(make_user)("mute")
    await database_sync_to_async(member_make)(room=private, user=muted)
    await Sanction.objects.acreate(
        room=private, user=muted, kind="mute", until=timezone.now() + timedelta(hours=1)
    )
    outsider = await database_sync_to_async(make_user)("outsider")
    results = await messages_store_pg(
        appends=[
            append(private, Actor(name="outsider", user=outsider)),
            append(private, Actor(name="mute", user=muted)),
            append(private, Actor(name="owner", user=owner)),
            append(private, Actor(name="owner", user=owner), reply_to=99),
        ]
    )
    codes = [r.code if isinstance(r, protocol.ChatError) else "ok" for r in results]
    assert codes == ["not_found", "forbidden", "ok", "not_found"]
    assert [seq async for seq in Message.objects.values_list("seq", flat=True)] == [1]


async def test_stream_append_keeps_the_order_of_a_batch_mixing_both_writers(lobby, owner):
    user = Actor(name="owner", user=owner)
    results = await stream_append(
        appends=[
            append(lobby, user, "plain"),
            append(lobby, user, "@owner hi"),  # mentions: the ORM's writer
            append(lobby, user),
        ]
    )
    assert [entry.seq for entry, _ in results] == [1, 2, 3]
    bodies = [b async for b in Message.objects.order_by("seq").values_list("body", flat=True)]
    assert bodies == ["plain", "@owner hi", "hi"]

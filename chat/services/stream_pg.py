"""The send path's writer on PostgreSQL: a group commit's plain messages
appended on native async psycopg, in two pipelined round trips.

`messages_store` (chat/services/stream.py) is the reference: this writes the
same rows under the same rules, for the entries that are most of the
traffic (a message with no attachment and no `@`; `pg_appendable`). It keeps
its invariants:

- each room row is locked (in id order), and its last_seq bumped once per
  new entry in the same transaction as the inserts: seqs are gapless and in
  commit order;
- a client_id already stored in the room gets that entry back (a resend is
  acknowledged with its first seq), read after the lock, so a concurrent
  writer's copy is seen;
- access is decided under the lock, by `append_refusal` from the facts read
  with it (chat/access.py).

Round trip 1 sends BEGIN, the lock and every fact (members, sanctions,
blocks, stored client_ids, replied-to messages); round trip 2 the inserts,
the new last_seqs and COMMIT. No thread hop: the process's pool is an
`AsyncConnectionPool`. The statements name the columns of the Django models,
which stay the schema's source of truth; tests run them against the
migrated database and check `COLUMNS` against the models.
"""

import itertools
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg_pool import AsyncConnectionPool

from chat import metrics, protocol
from chat.models import Message
from chat.perloop import PerLoop
from chat.protocol import EntryKind
from chat.services.stream import (
    Stored,
    StreamAppend,
    append_refusal,
    entry_make,
    messages_store_async,
    same_author,
)

# Every (table, column) the statements below name: held against the models.
COLUMNS = {
    "chat_room": "id slug private kind guests_can_write last_seq",
    "chat_membership": "room_id user_id",
    "chat_sanction": "room_id user_id kind until reason",
    "chat_block": "user_id blocked_id",
    "chat_message": "id room_id seq kind author_id author_name body reply_to client_id created"
    " deleted reacted",
}

LOCK = """SELECT id, slug, private, kind, guests_can_write, last_seq FROM chat_room
WHERE id = ANY(%(rooms)s) ORDER BY id FOR UPDATE"""
MEMBERS = """SELECT room_id, user_id FROM chat_membership
WHERE room_id = ANY(%(rooms)s) AND user_id = ANY(%(users)s)"""
SANCTIONS = """SELECT room_id, user_id, kind, until, reason FROM chat_sanction
WHERE room_id = ANY(%(rooms)s) AND user_id = ANY(%(users)s)
AND (until IS NULL OR until > now())"""
# (DM, user) pairs where a member of the DM blocked the user.
BLOCKED = """SELECT m.room_id, b.blocked_id FROM chat_membership m
JOIN chat_block b ON b.user_id = m.user_id JOIN chat_room r ON r.id = m.room_id
WHERE m.room_id = ANY(%(rooms)s) AND r.kind = 'dm' AND b.blocked_id = ANY(%(users)s)"""
STORED = """SELECT room_id, client_id, id, seq, author_id, author_name FROM chat_message
WHERE room_id = ANY(%(rooms)s) AND client_id = ANY(%(client_ids)s)"""
REPLIED = """SELECT room_id, seq FROM chat_message
WHERE room_id = ANY(%(rooms)s) AND seq = ANY(%(seqs)s) AND kind = 'message'"""
INSERT = """INSERT INTO chat_message (room_id, seq, kind, author_id, author_name, body,
reply_to, client_id, created, deleted, reacted)
SELECT room_id, seq, 'message', author_id, author_name, body, reply_to, client_id, %(now)s,
false, false FROM unnest(%(room_ids)s::bigint[], %(seqs)s::bigint[], %(authors)s::integer[],
%(names)s::text[], %(bodies)s::text[], %(replies)s::bigint[], %(client_ids)s::uuid[])
AS t(room_id, seq, author_id, author_name, body, reply_to, client_id)
RETURNING room_id, seq, id"""
BUMP = """UPDATE chat_room SET last_seq = t.last_seq
FROM unnest(%(rooms)s::bigint[], %(seqs)s::bigint[]) AS t(id, last_seq)
WHERE chat_room.id = t.id"""


@dataclass(slots=True)
class _Room:
    pk: int
    slug: str
    private: bool
    kind: str
    guests_can_write: bool
    last_seq: int


@dataclass(frozen=True, slots=True)
class _Sanction:
    kind: str
    until: datetime | None
    reason: str


def pg_appendable(append: StreamAppend) -> bool:
    """Whether `messages_store_pg` may write this entry: a plain message
    (a reply, too) with no attachment and no `@` (mentions stay on the ORM)."""
    return (
        append.kind == EntryKind.MESSAGE
        and append.attachment is None
        and not append.by_staff
        and "@" not in append.body
    )


def _pool_open() -> AsyncConnectionPool:
    db = settings.DATABASES["default"]
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
    )
    # Statements are prepared on each connection after their first use.
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=False,
        kwargs={"prepare_threshold": 0, "autocommit": True},
    )


_pools = PerLoop(_pool_open)


async def pool() -> AsyncConnectionPool:
    """This event loop's pool, opened on first use."""
    opened = _pools.get()
    if opened.closed:
        await opened.open()
    return opened


async def pool_close() -> None:
    """Close this event loop's pool, if it has one (a loop that ends: tests)."""
    if (opened := _pools.drop()) is not None:
        await opened.close()


async def messages_store_pg(*, appends: list[StreamAppend]) -> list[Stored]:
    """`messages_store` for entries that are all `pg_appendable`, on
    PostgreSQL: per entry, (entry, created) or the ChatError that refused it."""
    rooms_ids = sorted({a.room_id for a in appends})
    users = sorted({a.actor.user_id for a in appends if a.actor.user_id is not None})
    facts = {
        "rooms": rooms_ids,
        "users": users,
        "client_ids": [a.client_id for a in appends],
        "seqs": sorted({a.reply_to for a in appends if a.reply_to is not None}),
    }
    # What no entry of the batch can need is not asked: guests have no
    # memberships, sanctions or blocks, and plain messages reply to nothing.
    asked = {
        LOCK: True,
        MEMBERS: bool(users),
        SANCTIONS: bool(users),
        BLOCKED: bool(users),
        STORED: True,
        REPLIED: bool(facts["seqs"]),
    }
    async with (await pool()).connection() as conn, conn.pipeline() as pipe:
        # BEGIN and COMMIT as statements of the pipeline (the pool's
        # connections are in autocommit): psycopg's transaction block would
        # sync at its end, a round trip more. Anything raised here leaves
        # the transaction open, and the pool rolls it back.
        await conn.execute("BEGIN")
        cursors = [await conn.execute(sql, facts) if ask else None for sql, ask in asked.items()]
        await pipe.sync()  # round trip 1: the lock and the facts
        locked, members, sanctions, blocked, stored, replied = [
            await cursor.fetchall() if cursor is not None else [] for cursor in cursors
        ]
        rooms = {row[0]: _Room(*row) for row in locked}
        results, new = _decide(
            appends,
            rooms=rooms,
            members={(r, u) for r, u in members},
            sanctions={(r, u): _Sanction(k, until, why) for r, u, k, until, why in sanctions},
            blocked={(r, u) for r, u in blocked},
            stored={
                (r, c): Message(pk=pk, room_id=r, seq=s, author_id=a, author_name=n)
                for r, c, pk, s, a, n in stored
            },
            replied={(r, s) for r, s in replied},
        )
        if new:
            inserted = await conn.execute(INSERT, _columns(new))
            bumped = {m.room_id: m.seq for m in new}  # the last of each room is its top
            await conn.execute(BUMP, {"rooms": list(bumped), "seqs": list(bumped.values())})
        await conn.execute("COMMIT")
        await pipe.sync()  # round trip 2: the inserts, the bump and COMMIT
        if new:
            ids = {(r, s): pk for r, s, pk in await inserted.fetchall()}
            for entry in new:
                entry.pk = ids[entry.room_id, entry.seq]
    metrics.MESSAGES_STORED.inc(len(new))
    return results


def _decide(
    appends: list[StreamAppend],
    *,
    rooms: dict[int, _Room],
    members: set[tuple[int, int]],
    sanctions: dict[tuple[int, int], _Sanction],
    blocked: set[tuple[int, int]],
    stored: dict[tuple[int, object], Message],
    replied: set[tuple[int, int]],
) -> tuple[list[Stored], list[Message]]:
    """Per entry, what to answer; and the new entries, with their seqs."""
    now = timezone.now()
    results: list[Stored] = []
    new: list[Message] = []
    for append in appends:
        key = (append.room_id, append.client_id)
        try:
            if key in stored:
                results.append(same_author(stored[key], append.actor))
                continue
            refusal = append_refusal(
                append, rooms=rooms, members=members, sanctions=sanctions, blocked=blocked
            )
            if refusal:
                raise refusal
            room = rooms[append.room_id]  # else refused
            if append.reply_to is not None and (room.pk, append.reply_to) not in replied:
                raise protocol.ChatError(
                    protocol.ErrorCode.NOT_FOUND, f"no message {append.reply_to} in this room"
                )
        except protocol.ChatError as error:
            results.append(error)
            continue
        room.last_seq += 1
        stored[key] = entry = entry_make(append, seq=room.last_seq)
        entry.created = now  # the ORM would set it on save; this writer inserts it
        new.append(entry)
        results.append((entry, True))
    return results, new


def _columns(new: list[Message]) -> dict[str, object]:
    return {
        "now": new[0].created,
        "room_ids": [m.room_id for m in new],
        "seqs": [m.seq for m in new],
        "authors": [m.author_id for m in new],
        "names": [m.author_name for m in new],
        "bodies": [m.body for m in new],
        "replies": [m.reply_to for m in new],
        "client_ids": [m.client_id for m in new],
    }


async def stream_append(*, appends: list[StreamAppend]) -> list[Stored]:
    """Append a group commit's entries, in order: on PostgreSQL, each run of
    `pg_appendable` entries by `messages_store_pg`, the rest (and everything
    on SQLite) by `messages_store`. Per entry, as `messages_store` returns."""
    if connection.vendor != "postgresql":
        return await messages_store_async(appends=appends)
    results: list[Stored] = []
    for native, run in itertools.groupby(appends, key=pg_appendable):
        entries = list(run)
        if native:
            try:
                results += await messages_store_pg(appends=entries)
                continue
            except psycopg.errors.UniqueViolation:
                pass  # a duplicate got past the lock: the ORM path sorts it out
        results += await messages_store_async(appends=entries)
    return results

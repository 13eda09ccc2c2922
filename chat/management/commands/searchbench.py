"""`manage.py searchbench`: time `messages_search` over a made-up history in
an empty database (DATABASE_URL), with PostgreSQL's full-text search and with
the icontains fallback. docs/performance.md."""

import asyncio
import random
import time
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from chat.actor import Actor
from chat.models import Message, Room
from chat.selectors.messages import messages_search

WORDS = (
    "alpha beta gamma delta deploy build green red lunch meeting coffee release ship review "
    "merge branch test fail pass"
).split()
QUERIES = ("zanzibar", "deploy", "deploy review merge")


class Command(BaseCommand):
    help = "Time message search over a made-up history (needs an empty database)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rooms", type=int, default=20)
        parser.add_argument("--messages", type=int, default=10_000, help="per room")
        parser.add_argument("--repeat", type=int, default=10)

    def handle(self, *args, rooms: int, messages: int, repeat: int, **options) -> None:
        if Message.objects.exists():
            raise CommandError("the database holds messages: point DATABASE_URL at an empty one")
        user = get_user_model().objects.create(username="searchbench")
        rng = random.Random(1)
        for i in range(rooms):
            room = Room.objects.create(slug=f"search-{i}", title=f"search {i}", last_seq=messages)
            Message.objects.bulk_create(
                (_message(room, seq, user, rng) for seq in range(1, messages + 1)),
                batch_size=5000,
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE chat_message")
        actor = Actor(name=user.username, user=user)
        modes = [True, False] if connection.vendor == "postgresql" else [False]
        self.stdout.write(f"{rooms * messages:,} messages, {connection.vendor}")
        for q in QUERIES:
            for full_text in modes:
                ms = asyncio.run(_time(actor, q, full_text, repeat))
                kind = "full text" if full_text else "icontains"
                self.stdout.write(f"  {q!r:24} {kind:10} {ms:7.1f} ms per page of 50")


def _message(room: Room, seq: int, user, rng: random.Random) -> Message:
    # Eight common words; one message in a thousand also holds a rare one.
    rare = " zanzibar" if rng.random() < 0.001 else ""
    return Message(
        room=room,
        seq=seq,
        author=user,
        author_name=user.username,
        body=" ".join(rng.choices(WORDS, k=8)) + rare,
        client_id=uuid.uuid4(),
    )


async def _time(actor: Actor, q: str, full_text: bool, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        await messages_search(actor=actor, q=q, full_text=full_text, limit=50)
    return (time.perf_counter() - started) / repeat * 1000

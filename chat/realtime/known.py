"""What this process knows of each room it is subscribed to, so that a join
reads nothing from the database in the steady state: the room's facts (its
title, privacy, kind, whether guests write, a DM's members), each signed-in
joiner's role and ban, and the highest seq of the room known committed.
Sans-I/O.

The relay keeps one per subscribed room and drops it when the process leaves
the room, since only then does it hear of changes. It is kept exact by
`room.access`, which every change of who may be in a room publishes once it
commits, whatever made it (chat/services/moderation.py): the relay forgets
the user's facts (or all of them) before anything else reads them. Between
that commit and the event's arrival a join can still be let in on the old
facts; the event's check then takes the socket out. Writes never rely on
this: each is checked in its own transaction.

`last_seq` starts as the database's, read once the relay was subscribed (so
anything committed later reaches the relay), and rises with every entry the
relay fans out and every sweep's reading. A join's page is then the cache's
(chat/realtime/framecache.py) when it holds every seq up to it, else the
database's.
"""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban of a user from the room: in force until `until` (None: lifted by hand)."""

    kind: str
    until: datetime | None
    reason: str

    def in_force(self, now: datetime) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in user's standing in the room: their role (None: no
    membership) and their ban, if one may be in force."""

    role: str | None
    ban: Ban | None = None


@dataclass(slots=True)
class RoomKnown:
    """A room's facts, as the access rules and the `joined` frame need them."""

    id: int
    slug: str
    title: str
    private: bool
    kind: str
    guests_can_write: bool
    last_seq: int
    members: list[str] = field(default_factory=list)  # a DM's, by name
    people: dict[int, Person] = field(default_factory=dict)  # user id -> standing

    def seen(self, seq: int) -> None:
        """An entry with this seq is committed."""
        if seq > self.last_seq:
            self.last_seq = seq

"""Each room's recent message frames, encoded, as this process last sent them:
sans-I/O, so that `joined` and `since` catch-up skip the database and the encoder.

The relay keeps a cache for each room it is subscribed to, and feeds it
every stream entry it fans out (never what a join read from the database,
which could be older than a change already seen). An entry that changes
message `target` (an edit, delete, reaction or preview) drops the target's
frame: the database has its new state, and a page that needs it reads there.
A delete also drops every entry about its target (its edits and previews
carry its text) and keeps out any that arrive later.
A page is served from the cache only if every seq it spans is held and no
older than MAX_AGE; any gap or miss, and the caller reads the database.
This is how Centrifugo serves recovery without touching its history store.
"""

import time
from collections.abc import Callable

SIZE = 200  # frames kept per room: the default history page, four times over
MAX_AGE = 600.0  # seconds: retention, a day at least, erases only what is older


class RoomFrames:
    def __init__(self, *, size: int = SIZE, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self.frames: dict[int, tuple[str, float]] = {}  # seq -> (text, when cached)
        self.targets: dict[int, int] = {}  # seq of a held change entry -> its target
        # Seqs changed by a later entry: their frame, even arriving late (from
        # another process, behind the change), is never held again.
        self.changed: dict[int, None] = {}
        # Seqs deleted: no entry about them is held again either.
        self.erased: dict[int, None] = {}

    def add(self, seq: int, text: str, *, target: int | None = None, erase: bool = False) -> None:
        """Hold the frame of entry `seq`; forget `target`'s (it changed), and
        with `erase` (a delete) every entry about `target` too."""
        if target is not None:
            self._forget(target)
            self._remember(self.changed, target)
            if erase:
                for about in [s for s, t in self.targets.items() if t == target]:
                    self._forget(about)
                self._remember(self.erased, target)
        if seq in self.changed or (not erase and target in self.erased):
            return
        self.frames[seq] = (text, self.clock())
        if target is not None:
            self.targets[seq] = target
        while len(self.frames) > self.size:
            self._forget(next(iter(self.frames)))  # the first cached goes first

    def learn(self, entries: list[tuple[int, str, int | None]]) -> None:
        """Hold frames read from the database (seq, text, target), where none
        is held: read after the relay subscribed, each is the entry as it
        was then or later, unless a change seen since (its seq changed or
        erased) says otherwise."""
        for seq, text, target in entries:
            if seq not in self.frames and target not in self.erased:
                self.add(seq, text, target=None)  # its target's frame is not its to drop
                if target is not None and seq in self.frames:
                    self.targets[seq] = target

    def _forget(self, seq: int) -> None:
        self.frames.pop(seq, None)
        self.targets.pop(seq, None)

    def _remember(self, seqs: dict[int, None], seq: int) -> None:
        seqs[seq] = None
        if len(seqs) > self.size:
            del seqs[next(iter(seqs))]

    def page(self, *, after: int | None, upto: int, limit: int) -> list[str] | None:
        """The frames of a page (as `messages_page`: the oldest after `after`,
        else the newest), or None unless every one of them is held and fresh."""
        if after is not None:
            seqs = range(after + 1, min(upto, after + limit) + 1)
        else:
            seqs = range(max(1, upto - limit + 1), upto + 1)
        oldest = self.clock() - MAX_AGE
        texts = []
        for seq in seqs:
            held = self.frames.get(seq)
            if held is None or held[1] < oldest:
                return None
            texts.append(held[0])
        return texts

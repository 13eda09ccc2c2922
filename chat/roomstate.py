"""Which seqs of one room a receiver holds: sans-I/O, shared by the server and clients.

`low` is the contiguous watermark: every seq <= low is held. Seqs above it
that arrived early (out of order, or after a hole) wait in `above` until the
hole fills. static/chat/roomstate.js is the same logic for the browser.
"""


class SeqTracker:
    # One per socket and room joined: small, and the set only once needed.
    __slots__ = ("above", "low")

    def __init__(self, low: int = 0) -> None:
        self.low = low
        self.above: set[int] | None = None

    def accept(self, seq: int) -> bool:
        """Record a seq; False if it was already held (a duplicate to drop)."""
        if seq == self.low + 1 and not self.above:  # the usual case: the next one
            self.low = seq
            return True
        if seq <= self.low or (self.above is not None and seq in self.above):
            return False
        if self.above is None:
            self.above = set()
        self.above.add(seq)
        while self.low + 1 in self.above:
            self.low += 1
            self.above.remove(self.low)
        return True

    @property
    def high(self) -> int:
        """The highest seq held."""
        return max(self.above or (), default=self.low)

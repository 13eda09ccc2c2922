"""A token bucket, and the hold that keeps a socket's writes in order:
sans-I/O, with the clock passed in so tests need no sleeps."""

import time
from collections.abc import Callable

from chat.protocol import ChatError, ErrorCode


class TokenBucket:
    """Allows `burst` actions at once, refilled at `per_minute` actions a minute."""

    def __init__(
        self, *, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("a token bucket needs burst >= 1 and per_minute > 0")
        self.capacity = float(burst)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.tokens = self.capacity
        self.updated = clock()

    def wait(self) -> float:
        """Seconds until a token is free: 0.0 if one is now."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> float | None:
        """Spend one token. Returns None if allowed, else the seconds until one is free."""
        if (wait := self.wait()) > 0:
            return wait
        self.tokens -= 1.0
        return None


class Hold:
    """Keeps one socket's writes in order across a refusal "for a while"
    (`rate_limited`, `overloaded`: anything with a `retry_after`). Once a write
    is refused so, the socket's later writes are refused the same way until
    that one comes again, or until GRACE seconds past its `retry_after` (a
    client that gave it up). Else a later write could get the token that the
    refused one waits for, and be stored first."""

    GRACE = 2.0
    __slots__ = ("clock", "code", "ready", "until", "waiting")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.waiting: str | None = None  # the ref of the write refused for a while
        self.code = ErrorCode.RATE_LIMITED
        self.ready = 0.0  # when it may go again
        self.until = 0.0  # when the hold ends even if it never comes

    def check(self, *, ref: str) -> None:
        """Let the write `ref` go, or raise the refusal it gets while held."""
        now = self.clock()
        if self.waiting is None or ref == self.waiting or now >= self.until:
            self.waiting = None  # it came again (or never will): the hold is over
            return
        raise ChatError(
            self.code,
            "an earlier write of this socket was refused for a while: send it again first",
            retry_after=round(max(self.ready - now, 0.0) + 0.05, 3),
            ref=ref,
        )

    def refused(self, error: ChatError, *, ref: str) -> None:
        """Write `ref` was refused: hold the later ones if it may go again later."""
        if error.retry_after and self.waiting is None:
            self.waiting, self.code = ref, error.code
            self.ready = self.clock() + error.retry_after
            self.until = self.ready + self.GRACE

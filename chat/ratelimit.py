"""A token bucket: sans-I/O, with the clock passed in so tests need no sleeps."""

import time
from collections.abc import Callable


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

"""State kept once per event loop (each test, and each server process, runs its own)."""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """A value made by `factory` on first use in each event loop, and
    dropped with the loop: asyncio objects (locks, tasks, clients) belong to
    the loop that made them."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """This event loop's value."""
        loop = asyncio.get_running_loop()
        if loop not in self._values:
            self._values[loop] = self._factory()
        return self._values[loop]

    def drop(self) -> T | None:
        """Forget the running loop's value, and return it (None if none was made)."""
        return self._values.pop(asyncio.get_running_loop(), None)

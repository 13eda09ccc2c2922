"""Waiting for a server to answer: `make run` prints that the chat is
running only then (`python -m chat.ready URL PID`), and chatbench starts its
load only then (`ready_wait`)."""

import os
import sys
import time
import urllib.request
from collections.abc import Callable


def ready_wait(url: str, *, alive: Callable[[], bool], seconds: float = 60) -> bool:
    """Whether URL answered 200 within `seconds`, while `alive()` held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)  # a port that is not open yet gives no event to wait on
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # the server stopped: its own output says why
    return True


if __name__ == "__main__":
    url, pid = sys.argv[1], int(sys.argv[2])
    sys.exit(0 if ready_wait(url, alive=lambda: _alive(pid)) else 1)

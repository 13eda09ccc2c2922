"""`python -m chat.ready URL PID`: wait until URL answers 200 (up to 60 s),
or the process PID is gone; exit 0 once it answers, else 1. `make run`
prints that the chat is running only then."""

import os
import sys
import time
import urllib.request


def main(url: str, pid: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 1  # the server stopped: its own output says why
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return 0
        except OSError:
            time.sleep(0.1)  # a port that is not open yet gives no event to wait on
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))

"""A socket's sends in flight. Channels hands a consumer one frame at a
time, and waited for each send's commit before it read the next: a socket
had one send in the group commit at a time, however many it had sent. Here
a `send` is handed to the process's writer as soon as it is read, behind the
socket's earlier ones, and the socket reads on while it commits; its
answers (`ack`, or `error`) are written in the order the sends came. So a
socket's sends keep their order (the writer takes them in that order, and a
refusal for a while holds back the later ones: chat/ratelimit.py's `Hold`),
and idempotency is the writer's as before (a resend's `client_id`).
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable

from chat import metrics, protocol
from chat.ratelimit import Hold
from chat.realtime.outlet import Frame, Outlet

logger = logging.getLogger(__name__)


class Writes:
    """The answers a socket owes for its sends in flight, in order."""

    # Sends in flight per socket; past them, the socket's next frame waits
    # (and TCP holds the client back).
    LIMIT = 32

    __slots__ = ("answers", "outlet", "room", "task")

    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet
        self.answers: deque[tuple[str, asyncio.Future]] = deque()  # (ref, the answer)
        self.room = asyncio.Event()  # set while fewer than LIMIT are in flight
        self.room.set()
        self.task: asyncio.Task | None = None

    async def submit(
        self,
        submitting: Awaitable["asyncio.Task[protocol.AckEvent]"],
        *,
        ref: str,
        hold: Hold,
    ) -> None:
        """Hand a send to the writer (awaiting `submitting` queues it, and
        gives the task of its ack); its answer is written in its turn."""
        await self.room.wait()
        try:
            answer: asyncio.Future = await submitting
        except protocol.ChatError as error:  # refused before the writer: in its turn too
            hold.refused(error, ref=ref)
            answer = asyncio.get_running_loop().create_future()
            answer.set_exception(error)
        self.answers.append((ref, answer))
        if len(self.answers) >= self.LIMIT:
            self.room.clear()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._answer())

    async def _answer(self) -> None:
        try:
            while self.answers:
                ref, answer = self.answers[0]
                try:
                    frame: protocol.ServerFrame = await asyncio.shield(answer)
                except protocol.ChatError as error:
                    if error.ref is None:
                        error.ref = ref
                    frame = protocol.error_event(error)
                except Exception:
                    logger.exception("a send failed")
                    fault = protocol.ChatError(
                        protocol.ErrorCode.INTERNAL_ERROR, "the server failed; try again", ref=ref
                    )
                    frame = protocol.error_event(fault)
                self.answers.popleft()
                self.room.set()
                metrics.FRAMES_OUT.labels(frame.type).inc()
                self.outlet.write(Frame(protocol.encode(frame)))
        finally:
            self.task = None

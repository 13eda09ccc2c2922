"""The sweep: each process's guard against what the channel layer loses.

Live delivery through the channel layer is at most once: a full channel, a
Redis restart, or a process killed between commit and broadcast each lose a
message silently. Every CHAT_SWEEP_SECONDS, a task in each server process:

1. reads the last_seq of every room its sockets have joined (one query), and
   asks each socket that lags behind the last_seq seen one sweep earlier to
   fill the hole from the database (one sweep of grace lets in-flight
   broadcasts land first, so the fill rarely sends what is already coming);
2. refreshes the presence of its sockets, and reports others' expired ones,
   and keeps its sockets counted (chat/services/limits.py);
3. closes sockets whose credentials no longer hold (a revoked token, an
   ended session, a deactivated user: a query each), and takes sockets out
   of rooms their user was banned or removed from, and guests out of rooms
   made private (three queries at most), in case the layer lost the event
   that does so at once;
4. records that its signed-in sockets' users are here (`last_seen`, which
   holds back missed-message emails).

So every committed message reaches every joined socket within about two
sweeps, and a socket whose credentials were revoked closes within one,
whatever the layer did.
"""

import asyncio
import logging
import weakref

from django.conf import settings

from chat.realtime.presence import presence_refresh
from chat.realtime.relay import rooms_seen, sockets_recheck
from chat.realtime.sockets import Socket, sockets_open
from chat.selectors.rooms import rooms_last_seq
from chat.selectors.users import credentials_valid
from chat.services.broadcast import LAYER_ERRORS
from chat.services.limits import sockets_refresh
from chat.services.users import users_seen
from chat.taskqueue import schedule_inline

logger = logging.getLogger(__name__)

_tasks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def sweep_start() -> None:
    """Start this event loop's sweep (and, without a broker, the periodic
    tasks: chat/taskqueue.py) if it is not running."""
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        _tasks[loop] = loop.create_task(_sweep_forever(), name="chat-sweep")
        schedule_inline()


async def _sweep_forever() -> None:
    previous: dict[str, int] = {}
    while True:
        await asyncio.sleep(settings.CHAT_SWEEP_SECONDS)
        try:
            previous = await sweep(previous)
        except Exception:
            logger.exception("sweep failed; retrying next interval")


async def sweep(previous: dict[str, int]) -> dict[str, int]:
    """One sweep. `previous` is the last_seq per room read by the sweep before;
    returns this sweep's, for the next."""
    sockets = sockets_open()
    try:
        await users_seen(user_ids={s.actor.user_id for s in sockets if s.actor.user_id})
    except Exception as exc:
        logger.warning("recording who is here failed: %s", exc)
    await _close_unauthorized(sockets)
    await sockets_recheck(sockets)
    try:
        await sockets_refresh(
            sockets=[(s.holder, s.channel_name) for s in sockets if s.holder is not None]
        )
    except LAYER_ERRORS as exc:
        logger.warning("socket count refresh failed: %s", exc)
    present: dict[str, list] = {}
    for socket in sockets:
        for slug in socket.rooms:
            present.setdefault(slug, []).append((socket.channel_name, socket.actor))
    if not present:
        return {}
    for socket in sockets:
        for slug, tracker in list(socket.rooms.items()):
            if tracker.low < previous.get(slug, 0):
                try:
                    await socket.fill(slug)
                except Exception as exc:
                    logger.warning("fill of %s failed: %s", slug, exc)
    try:
        await presence_refresh(present=present)
    except Exception as exc:
        logger.warning("presence refresh failed: %s", exc)
    last_seqs = await rooms_last_seq(slugs=list(present))
    rooms_seen(last_seqs)
    return last_seqs


async def _close_unauthorized(sockets: list[Socket]) -> None:
    users = {s.actor.user_id for s in sockets if s.actor.user_id is not None}
    if not users:
        return
    tokens = {s.scope["token_id"] for s in sockets if s.scope.get("token_id") is not None}
    sessions = {s.session_key for s in sockets if s.session_key is not None}
    active, alive, live = await credentials_valid(users=users, tokens=tokens, sessions=sessions)
    for socket in sockets:
        if socket.actor.user_id is None:
            continue
        token, session = socket.scope.get("token_id"), socket.session_key
        if socket.actor.user_id not in active:
            reason = "this account was deactivated"
        elif token is not None and token not in alive:
            reason = "the API token of this connection was revoked"
        elif session is not None and session not in live:
            reason = "this session has ended: signed out, or the password changed"
        else:
            continue
        await socket.end_session(reason)  # its disconnect unregisters it

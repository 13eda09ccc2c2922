"""Limits shared by every process: send rates per user and per address,
emails sent on request (per user, per address, per recipient), and open
sockets per user and (for guests) per address.

A token bucket per user (CHAT_SEND_BURST, CHAT_SEND_PER_MINUTE) and per
client address (CHAT_IP_SEND_BURST, CHAT_IP_SEND_PER_MINUTE) caps sends,
edits and deletes, whatever the socket or HTTP request they come through.
With REDIS_URL the buckets live in Redis and are updated by one script, so
that all replicas share them; without it, in this process.
"""

import hashlib

from django.conf import settings

from chat import protocol
from chat.actor import Actor
from chat.ratelimit import TokenBucket
from chat.services.broadcast import LAYER_ERRORS, redis_client

# For each sender in ARGV (after a burst and a rate, in tokens/s, per key of
# KEYS), the indexes of the buckets it draws on, "1 2": takes a token from
# each of its buckets, or from none. Returns each sender's wait, "0" when it
# got its tokens, else the seconds until each bucket has one. One call for a
# whole batch of sends, on Redis' clock.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local tokens, burst, rate = {}, {}, {}
for i, key in ipairs(KEYS) do
  burst[i], rate[i] = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local have = tonumber(state[1]) or burst[i]
  local at = tonumber(state[2]) or now
  tokens[i] = math.min(burst[i], have + math.max(0, now - at) * rate[i])
end
local waits = {}
for j = 2 * #KEYS + 1, #ARGV do
  local wait = 0
  for k in string.gmatch(ARGV[j], '%d+') do
    local i = tonumber(k)
    if tokens[i] < 1 then wait = math.max(wait, (1 - tokens[i]) / rate[i]) end
  end
  if wait == 0 then
    for k in string.gmatch(ARGV[j], '%d+') do tokens[tonumber(k)] = tokens[tonumber(k)] - 1 end
  end
  waits[#waits + 1] = tostring(wait)
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tokens[i], 'at', now)
  redis.call('EXPIRE', key, math.ceil(burst[i] / rate[i]) + 1)
end
return waits
"""
_buckets: dict[str, TokenBucket] = {}  # without Redis
_MAX_BUCKETS = 100_000


def _limits(*, actor: Actor, address: str | None) -> dict[str, tuple[int, float]]:
    """The buckets a send draws on, with each one's (burst, per minute)."""
    prefix = f"{settings.CHANNEL_LAYER_PREFIX}:rate"
    limits: dict[str, tuple[int, float]] = {}
    if actor.user_id is not None:  # a guest's name is not an identity: its address is
        limits[f"{prefix}:user:{actor.user_id}"] = (
            settings.CHAT_SEND_BURST,
            settings.CHAT_SEND_PER_MINUTE,
        )
    if address:
        limits[f"{prefix}:ip:{address}"] = (
            settings.CHAT_IP_SEND_BURST,
            settings.CHAT_IP_SEND_PER_MINUTE,
        )
    return limits


def _refusal(wait: float, detail: str = "sending too fast") -> protocol.ChatError | None:
    if wait <= 0:
        return None
    return protocol.ChatError(protocol.ErrorCode.RATE_LIMITED, detail, retry_after=round(wait, 3))


async def rate_take(*, buckets: dict[str, tuple[int, float]], detail: str) -> None:
    """Take one token from each of these buckets (name -> (burst, per
    minute)), shared by every process like the send rates; or raise
    `rate_limited` saying `detail`, with `retry_after` (and take none)."""
    prefix = f"{settings.CHANNEL_LAYER_PREFIX}:rate"
    [wait] = await _waits([{f"{prefix}:{name}": limit for name, limit in buckets.items()}])
    if refusal := _refusal(wait, detail):
        raise refusal


async def mail_rate_take(*, user_id: int | None, address: str | None, to: str) -> None:
    """Take one email asked for (a verification link, a password reset) from
    the buckets of the user who asks, the client address it comes from, and
    the recipient (a hash of the address, never the address): or raise
    `rate_limited` with `retry_after`, and send nothing."""
    burst, per_minute = settings.CHAT_MAIL_BURST, settings.CHAT_MAIL_PER_HOUR / 60
    recipient = hashlib.sha256(to.strip().lower().encode()).hexdigest()[:32]
    buckets = {f"mail:to:{recipient}": (burst, per_minute)}
    if user_id is not None:
        buckets[f"mail:user:{user_id}"] = (burst, per_minute)
    if address:
        buckets[f"mail:ip:{address}"] = (3 * burst, 3 * per_minute)
    await rate_take(buckets=buckets, detail="too many emails asked for: try again later")


async def send_rate_take(*, actor: Actor, address: str | None) -> None:
    """Take one send from the actor's and the address's buckets, or raise
    `rate_limited` with `retry_after` (and take nothing)."""
    [refusal] = await send_rates_take(senders=[(actor, address)])
    if refusal is not None:
        raise refusal


async def send_rates_take(
    *, senders: list[tuple[Actor, str | None]]
) -> list[protocol.ChatError | None]:
    """`send_rate_take` for a batch of sends (actor, address), in order, in
    one Redis call: per send, None if it may go, else its `rate_limited`."""
    per_send = [_limits(actor=actor, address=address) for actor, address in senders]
    return [_refusal(wait) for wait in await _waits(per_send)]


async def _waits(per_take: list[dict[str, tuple[int, float]]]) -> list[float]:
    """For each take (the buckets it draws on), in order: 0 if it got a token
    from each, else the seconds until it would. One Redis call for them all."""
    limits = {key: limit for take in per_take for key, limit in take.items()}
    if not limits:
        return [0.0] * len(per_take)
    client = redis_client()
    if client is not None:
        index = {key: i for i, key in enumerate(limits, start=1)}
        args: list[float | str] = [
            value for burst, per_minute in limits.values() for value in (burst, per_minute / 60)
        ]
        args += [" ".join(str(index[key]) for key in take) for take in per_take]
        try:
            waits = await client.eval(_TAKE, len(limits), *limits, *args)
            return [float(wait) for wait in waits]
        except LAYER_ERRORS:
            pass  # Redis away: limit per process rather than not at all
    return [_take_here(take) for take in per_take]


def _take_here(limits: dict[str, tuple[int, float]]) -> float:
    if len(_buckets) > _MAX_BUCKETS:
        _buckets.clear()  # a flood of addresses must not grow memory: start over
    buckets = [
        _buckets.setdefault(key, TokenBucket(burst=burst, per_minute=per_minute))
        for key, (burst, per_minute) in limits.items()
    ]
    waits = [bucket.wait() for bucket in buckets]
    if any(waits):
        return max(waits)
    for bucket in buckets:
        bucket.take()
    return 0.0


# --- Open sockets per user, and guests' per address ------------------------------
# Each holder's sockets (a signed-in user, or a client address for guests),
# across processes: a Redis sorted set of channel names scored by expiry,
# refreshed by each process's sweep, so a killed process's sockets stop
# counting after CHAT_PRESENCE_TTL.

_sockets_here: dict[str, set[str]] = {}  # without Redis

# Counts channel ARGV[3] in the set KEYS[1] if fewer than ARGV[1] unexpired
# ones are there, each kept ARGV[2] seconds: 1 if counted, else 0. One round
# trip, on Redis' clock.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


def socket_holder(*, actor: Actor, address: str | None) -> str | None:
    """Whose open sockets a socket counts against: its user's, or for a guest
    its address's (None: a guest with no address, in-process tests)."""
    if actor.user_id is not None:
        return f"user:{actor.user_id}"
    return f"ip:{address}" if address else None


def _sockets_key(holder: str) -> str:
    return f"{settings.CHANNEL_LAYER_PREFIX}:sockets:{holder}"


async def socket_admit(*, holder: str, channel: str) -> None:
    """Count a new socket of the holder, or raise `forbidden` if they have as
    many open as allowed already (CHAT_MAX_SOCKETS_PER_USER for a user,
    CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS for guests at one address); the
    socket is then not counted."""
    guests = holder.startswith("ip:")
    cap = (
        settings.CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS
        if guests
        else settings.CHAT_MAX_SOCKETS_PER_USER
    )
    client = redis_client()
    if client is None:
        open_now = _sockets_here.setdefault(holder, set())
        admitted = len(open_now) < cap
        if admitted:
            open_now.add(channel)
    else:
        ttl = settings.CHAT_PRESENCE_TTL
        admitted = bool(await client.eval(_ADMIT, 1, _sockets_key(holder), cap, ttl, channel))
    if not admitted:
        raise protocol.ChatError(
            protocol.ErrorCode.FORBIDDEN,
            f"at most {cap} open connections per {'address for guests' if guests else 'user'}",
            close=protocol.CloseCode.TOO_MANY_CONNECTIONS,
        )


async def socket_release(*, holder: str, channel: str) -> None:
    client = redis_client()
    if client is None:
        open_now = _sockets_here.get(holder, set())
        open_now.discard(channel)
        if not open_now:
            _sockets_here.pop(holder, None)
        return
    try:
        await client.zrem(_sockets_key(holder), channel)
    except LAYER_ERRORS:
        pass  # the entry expires on its own


async def sockets_refresh(*, sockets: list[tuple[str, str]]) -> None:
    """Keep this process's sockets (holder, channel) counted: called by the sweep."""
    client = redis_client()
    if client is None or not sockets:
        return
    expiry = await _now(client) + settings.CHAT_PRESENCE_TTL
    async with client.pipeline(transaction=False) as pipe:
        for holder, channel in sockets:
            pipe.zadd(_sockets_key(holder), {channel: expiry})
            pipe.expire(_sockets_key(holder), settings.CHAT_PRESENCE_TTL)
        await pipe.execute()


async def _now(client) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000

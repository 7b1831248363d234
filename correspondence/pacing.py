"""Pacing bulk sends per sending number, in SMS segments per second, shared by every worker process.

Carriers and Twilio cap each sender's throughput in segments per second (a long code about 1, toll-free 3,
a short code 100); going faster only queues texts at Twilio or earns 429s. The budget lives in Redis, so
every worker on every host draws on the same one, and the clock is Redis's own ``TIME``, so hosts whose
clocks disagree still agree on the pace.

The limiter is GCRA (generic cell rate algorithm): each key keeps a theoretical arrival time (TAT), the
earliest instant the next send may go. A send is granted when the TAT has come, and pushes it forward by
``cost / rate`` seconds. There is no burst tolerance: over any window of ``W`` seconds at most
``rate * W`` segments plus one message's cost are granted, even right after an idle spell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis
from django.conf import settings

from offices.models import NumberType

# Segments per second Twilio allows each kind of sender by default (US/Canada). An unknown kind gets the
# slowest, which is never too fast.
RATE_BY_NUMBER_TYPE: dict[str, float] = {
    NumberType.LONG_CODE: 1.0,
    NumberType.TOLL_FREE: 3.0,
    NumberType.SHORT_CODE: 100.0,
}
_SLOWEST_RATE = min(RATE_BY_NUMBER_TYPE.values())

# A key outlives its TAT by this long, then expires: an idle number leaves nothing behind in Redis.
_EXPIRE_AFTER_TAT_MS = 1000

# Both scripts read Redis's clock and then write, atomically. Times are integer microseconds (a Lua number
# is a double: exact up to 2**53 us, some 285 years of Unix time), written with %d, since tostring would
# round them to 14 significant digits.
_ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat ~= nil and tat > now then
    return tat - now
end
local increment = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', now + increment),
    'PX', math.ceil(increment / 1000) + tonumber(ARGV[2]))
return 0
"""

_PENALIZE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local delay = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat ~= nil and tat >= now + delay then
    return 0
end
redis.call('SET', KEYS[1], string.format('%d', now + delay),
    'PX', math.ceil(delay / 1000) + tonumber(ARGV[2]))
return 1
"""


# A 429 backs the number off by ``interval * 2 ** (level - 1)`` (times the caller's jitter), where the
# level counts recent 429s: each adds one, and it halves every THROTTLE_HALF_LIFE_SECONDS. A stray 429 costs
# one or two intervals; a storm doubles the hold with each 429 until it stops, up to THROTTLE_MAX_SECONDS.
# Successes are never slowed, so the rate recovers as soon as the 429s stop.
THROTTLE_HALF_LIFE_SECONDS = 1.0
THROTTLE_MAX_SECONDS = 30.0
_THROTTLE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local jitter = tonumber(ARGV[2])
local half_life = tonumber(ARGV[3])
local ceiling = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[2], 'level', 'at')
local level = tonumber(state[1]) or 0
local at = tonumber(state[2]) or now
level = level * math.pow(2, -(now - at) / half_life) + 1
local delay = math.min(ceiling, interval * math.pow(2, level - 1) * jitter)
redis.call('HSET', KEYS[2], 'level', string.format('%.6f', level), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[2], math.ceil(half_life * 20 / 1000))
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now + delay then
    redis.call('SET', KEYS[1], string.format('%d', now + delay),
        'PX', math.ceil(delay / 1000) + tonumber(ARGV[5]))
end
return math.floor(delay)
"""


def number_rate(*, number_type: str, messaging_service_sid: str, override: float | None) -> float:
    """Segments per second one sending number may be paced at.

    An override (> 0) set by the operator wins. A number sending through a Messaging Service is paced at
    ``BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND``, since the service's senders and their throughput are
    configured at Twilio, not here. Otherwise the number's type decides.
    """
    if override is not None and override > 0:
        return float(override)
    if messaging_service_sid:
        return float(settings.BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND)
    return RATE_BY_NUMBER_TYPE.get(number_type, _SLOWEST_RATE)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _microseconds(seconds: float) -> int:
    """Rounded up, so a rounded interval never lets a number go faster than its rate."""
    return max(1, math.ceil(seconds * 1_000_000))


class Pacer:
    """A GCRA limiter on one Redis, one TAT per key (e.g. a sending number's E.164).

    Redis errors are raised, not swallowed: a sender that cannot reach the limiter must not send unpaced.
    """

    def __init__(self, client: redis.Redis, prefix: str = "civicdesk:pace:") -> None:
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._penalize = client.register_script(_PENALIZE_LUA)
        self._throttle = client.register_script(_THROTTLE_LUA)

    def acquire(self, key: str, *, cost: float, rate: float) -> float:
        """Take ``cost`` segments of ``key``'s budget at ``rate`` segments per second if its turn has come.

        Returns 0.0 when granted (the TAT moves ``cost / rate`` seconds past now); otherwise the seconds
        until it may be granted (> 0), and nothing changes. Checking and taking are one script, so two
        processes can never both take the same turn.
        """
        _positive("cost", cost)
        _positive("rate", rate)
        wait_us = self._acquire(
            keys=[self._prefix + key], args=[_microseconds(cost / rate), _EXPIRE_AFTER_TAT_MS]
        )
        return int(wait_us) / 1_000_000

    def penalize(self, key: str, *, seconds: float) -> None:
        """Grant nothing on ``key`` for at least ``seconds`` from now (e.g. after a 429 from Twilio).

        Every process sending from the number slows down together; afterwards the rate is the usual one
        again, with no state left to undo. A TAT already further ahead is kept.
        """
        _positive("seconds", seconds)
        self._penalize(keys=[self._prefix + key], args=[_microseconds(seconds), _EXPIRE_AFTER_TAT_MS])

    def throttled(self, key: str, *, cost: float, rate: float, jitter: float = 1.0) -> float:
        """Twilio answered ``key``'s send with a 429: hold the number back, more the more recent 429s it had.

        The hold is ``cost / rate`` seconds (one turn) doubled for each 429 in the recent past (their count
        halves every ``THROTTLE_HALF_LIFE_SECONDS``), times ``jitter``, at most ``THROTTLE_MAX_SECONDS``.
        Returns the hold in seconds. Like ``penalize``, a TAT already further ahead is kept."""
        _positive("cost", cost)
        _positive("rate", rate)
        _positive("jitter", jitter)
        delay_us = self._throttle(
            keys=[self._prefix + key, self._prefix + key + ":429"],
            args=[
                _microseconds(cost / rate),
                jitter,
                _microseconds(THROTTLE_HALF_LIFE_SECONDS),
                _microseconds(THROTTLE_MAX_SECONDS),
                _EXPIRE_AFTER_TAT_MS,
            ],
        )
        return int(delay_us) / 1_000_000

    def wait(
        self,
        key: str,
        *,
        cost: float,
        rate: float,
        deadline: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Acquire, sleeping between tries, until granted (True) or until the next try would come after
        ``deadline``, a ``time.monotonic()`` value (False, and nothing was granted).

        Another process may take the turn this one slept for; then it simply waits for the next.
        """
        while True:
            delay = self.acquire(key, cost=cost, rate=rate)
            if delay == 0.0:
                return True
            if time.monotonic() + delay > deadline:
                return False
            sleep(delay)

"""The per-number pacer on the real (embedded) Redis: rates by number, GCRA pacing under concurrency."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
import redis

from common.queueing import cache_redis_client
from correspondence import pacing
from correspondence.pacing import Pacer, number_rate
from offices.models import NumberType
from tests.redis_cache import PrivateCache


@pytest.fixture
def client(private_cache: PrivateCache) -> redis.Redis:
    found = cache_redis_client()
    assert found is not None
    return found


@pytest.fixture
def prefix(private_cache: PrivateCache) -> str:
    """Under the test's private cache prefix, so the fixture deletes the pacer's keys afterwards."""
    return f"{private_cache.prefix}:pace:"


@pytest.fixture
def pacer(client: redis.Redis, prefix: str) -> Pacer:
    return Pacer(client, prefix=prefix)


@pytest.mark.parametrize(
    ("number_type", "expected"),
    [(NumberType.LONG_CODE, 1.0), (NumberType.TOLL_FREE, 3.0), (NumberType.SHORT_CODE, 100.0)],
)
def test_number_rate_by_type(number_type: str, expected: float) -> None:
    assert number_rate(number_type=number_type, messaging_service_sid="", override=None) == expected


def test_number_rate_of_an_unknown_type_is_the_slowest() -> None:
    assert number_rate(number_type="carrier_pigeon", messaging_service_sid="", override=None) == 1.0


def test_number_rate_override_wins(settings: Any) -> None:
    settings.BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND = 7
    assert number_rate(number_type=NumberType.LONG_CODE, messaging_service_sid="", override=2.5) == 2.5
    assert (
        number_rate(number_type=NumberType.SHORT_CODE, messaging_service_sid="MG" + "a" * 32, override=12)
        == 12
    )


@pytest.mark.parametrize("override", [None, 0.0, -5.0])
def test_number_rate_messaging_service_uses_the_setting(settings: Any, override: float | None) -> None:
    settings.BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND = 7
    sid = "MG" + "a" * 32
    assert number_rate(number_type=NumberType.TOLL_FREE, messaging_service_sid=sid, override=override) == 7.0
    assert number_rate(number_type=NumberType.TOLL_FREE, messaging_service_sid="", override=override) == 3.0


def test_messaging_service_default_is_one_segment_per_second() -> None:
    from django.conf import settings

    assert settings.BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND == 1


def test_threads_sharing_one_key_stay_within_the_rate(client: redis.Redis, prefix: str) -> None:
    """Four threads, each with its own pacer and connection (as separate workers would have), hammer one
    number at 40 segments/s for 3 s. In every 1 s window at most rate*W + cost is granted, and the pace
    achieved is the rate: a limiter that granted without checking would give thousands, one that let two
    callers take the same turn would put two grants in one slot and overfill a window."""
    rate, cost, seconds, window = 40.0, 1.0, 3.0, 1.0
    grants: list[float] = []
    lock = threading.Lock()
    failures: list[BaseException] = []
    own_clients = [redis.Redis(connection_pool=_own_pool(client)) for _ in range(4)]
    stop = time.monotonic() + seconds

    def hammer(own: Pacer) -> None:
        try:
            while time.monotonic() < stop:
                if own.acquire("+14155550100", cost=cost, rate=rate) == 0.0:
                    granted = time.time()
                    with lock:
                        grants.append(granted)
        except BaseException as exc:  # reported by the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(Pacer(own, prefix=prefix),)) for own in own_clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for own in own_clients:
            own.close()
    assert failures == []

    grants.sort()
    assert _most_in_any_window(grants, window) <= rate * window + cost
    achieved = (len(grants) - 1) / (grants[-1] - grants[0])
    assert achieved == pytest.approx(rate, rel=0.10)


def _own_pool(client: redis.Redis) -> redis.ConnectionPool:
    """A new pool to the same Redis, with the same connection settings."""
    pool = client.connection_pool
    return redis.ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)


def _most_in_any_window(stamps: list[float], window: float) -> int:
    """The most grants in any half-open window [t, t + window) (sorted stamps, two pointers)."""
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_the_window_check_catches_a_limiter_that_does_not_limit() -> None:
    """The threaded test's measure itself: 42 grants 24 ms apart fill a 1 s window past 40/s + 1, and
    grants 1/32 s apart (exact in binary) put 32 in any window."""
    assert _most_in_any_window([i * 0.024 for i in range(42)], 1.0) == 42
    assert _most_in_any_window([i / 32 for i in range(100)], 1.0) == 32


def test_multi_segment_cost_takes_that_many_turns(pacer: Pacer) -> None:
    """A 3-segment text at 6 segments/s: two texts a second, 0.5 s apart."""
    assert pacer.acquire("n", cost=3, rate=6) == 0.0
    wait = pacer.acquire("n", cost=3, rate=6)
    assert 0.45 < wait <= 0.5
    time.sleep(wait)
    assert pacer.acquire("n", cost=3, rate=6) == 0.0
    assert 0.45 < pacer.acquire("n", cost=3, rate=6) <= 0.5


def test_a_refused_acquire_takes_nothing(pacer: Pacer) -> None:
    assert pacer.acquire("n", cost=1, rate=2) == 0.0
    first = pacer.acquire("n", cost=1, rate=2)
    second = pacer.acquire("n", cost=1, rate=2)
    assert 0 < second <= first <= 0.5


def test_separate_keys_do_not_share_budget(pacer: Pacer) -> None:
    assert pacer.acquire("+14155550100", cost=1, rate=1) == 0.0
    assert pacer.acquire("+14155550100", cost=1, rate=1) > 0.9
    assert pacer.acquire("+14155550101", cost=1, rate=1) == 0.0


def test_penalize_delays_the_next_grant_then_the_rate_recovers(pacer: Pacer) -> None:
    assert pacer.acquire("n", cost=1, rate=10) == 0.0
    pacer.penalize("n", seconds=1.0)
    wait = pacer.acquire("n", cost=1, rate=10)
    assert 0.9 < wait <= 1.0

    started = time.monotonic()
    assert pacer.wait("n", cost=1, rate=10, deadline=started + 2.0)
    assert time.monotonic() - started == pytest.approx(wait, abs=0.1)
    # Back to 10/s: the next turn is a tenth of a second away, not another second.
    assert 0.05 < pacer.acquire("n", cost=1, rate=10) <= 0.1


def test_penalize_never_brings_a_later_turn_forward(pacer: Pacer) -> None:
    assert pacer.acquire("n", cost=2, rate=1) == 0.0
    pacer.penalize("n", seconds=0.2)
    assert pacer.acquire("n", cost=2, rate=1) > 1.9


def test_wait_gives_up_without_taking_a_turn_when_the_deadline_comes_first(pacer: Pacer) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    assert pacer.acquire("n", cost=1, rate=2) == 0.0
    assert not pacer.wait("n", cost=1, rate=2, deadline=time.monotonic() + 0.2, sleep=sleep)
    assert slept == []
    assert pacer.wait("n", cost=1, rate=2, deadline=time.monotonic() + 1.0, sleep=sleep)
    assert len(slept) == 1
    assert 0.4 < slept[0] <= 0.5


def test_keys_expire_soon_after_their_turn(pacer: Pacer, client: redis.Redis, prefix: str) -> None:
    assert pacer.acquire("n", cost=1, rate=10) == 0.0
    assert 0 < client.pttl(prefix + "n") <= 100 + 1000
    pacer.penalize("p", seconds=2.0)
    assert 2000 < client.pttl(prefix + "p") <= 2000 + 1000


@pytest.mark.parametrize(("cost", "rate"), [(0, 1), (1, 0), (-1, 1), (1, float("inf")), (float("nan"), 1)])
def test_nonsense_costs_and_rates_are_refused(pacer: Pacer, cost: float, rate: float) -> None:
    with pytest.raises(ValueError, match="must be a positive finite number"):
        pacer.acquire("n", cost=cost, rate=rate)


def test_a_stray_429_holds_the_number_back_for_about_one_turn(pacer: Pacer) -> None:
    assert pacer.acquire("n", cost=1, rate=20) == 0.0
    held = pacer.throttled("n", cost=1, rate=20)
    assert held == pytest.approx(0.05, rel=0.01)
    assert 0.04 < pacer.acquire("n", cost=1, rate=20) <= 0.05


def test_429s_in_a_row_double_the_hold_and_the_rate_recovers_once_they_stop(pacer: Pacer) -> None:
    holds = [pacer.throttled("n", cost=1, rate=100) for _ in range(6)]
    # Each 429 at once after the last adds a whole level: 10 ms, 20 ms, 40 ms, ... (a little less, as the
    # level decays between two calls).
    for before, after in itertools.pairwise(holds):
        assert 1.9 < after / before <= 2.0
    assert holds[-1] == pytest.approx(0.32, rel=0.02)
    time.sleep(holds[-1])
    # Successes are not slowed: the next turn is one interval away.
    assert pacer.acquire("n", cost=1, rate=100) == 0.0
    assert 0 < pacer.acquire("n", cost=1, rate=100) <= 0.01


def test_the_429_count_fades_with_its_half_life(pacer: Pacer) -> None:
    first = pacer.throttled("n", cost=1, rate=100)
    time.sleep(pacing.THROTTLE_HALF_LIFE_SECONDS * 3)
    # Three half-lives later the first 429 counts an eighth: the hold is 2 ** 0.125 turns, not two.
    assert pacer.throttled("n", cost=1, rate=100) == pytest.approx(first * 2**0.125, rel=0.02)


def test_the_hold_is_capped_jittered_and_never_brings_a_later_turn_forward(pacer: Pacer) -> None:
    holds = [pacer.throttled("n", cost=1, rate=1) for _ in range(8)]
    assert holds[-1] == pacing.THROTTLE_MAX_SECONDS
    wait = pacer.acquire("n", cost=1, rate=1)
    assert pacing.THROTTLE_MAX_SECONDS - 1 < wait <= pacing.THROTTLE_MAX_SECONDS
    assert pacer.throttled("m", cost=1, rate=1, jitter=0.5) == pytest.approx(0.5)
    # A stray 429 on a number held for longer (a penalty) leaves its later turn where it is.
    pacer.penalize("p", seconds=5.0)
    assert pacer.throttled("p", cost=1, rate=10) == pytest.approx(0.1)
    assert pacer.acquire("p", cost=1, rate=10) > 4.9

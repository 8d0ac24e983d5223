"""Rate limits, lockouts and usage slots (`stratus.domain.limits`) on the real limits table in the in-process
emulator; time is a clock the test moves (nothing sleeps)."""

from __future__ import annotations

import pytest

from stratus.domain.limits import LimitReached, Rate, RateLimiter, UsageSlots
from stratus.store.limits import DynamoCounterStore, DynamoSlotStore
from stratus.store.models import LimitModel


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_rate_counts_per_subject_and_window(tables):
    clock = Clock(1_800_000_030.0)  # 30 s into a minute window
    limiter = RateLimiter(DynamoCounterStore(), clock)
    rate = Rate(3, 60)
    for _ in range(3):
        limiter.hit("register", "198.51.100.1", rate)
    with pytest.raises(LimitReached) as reached:
        limiter.hit("register", "198.51.100.1", rate)
    assert reached.value.retry_after_s == 30  # until the window ends
    limiter.hit("register", "198.51.100.2", rate)  # another subject has its own count
    clock.now += 30
    limiter.hit("register", "198.51.100.1", rate)  # a new window starts at zero
    # the counters hold digests, not the addresses, and expire with their window
    items = list(LimitModel.scan())
    assert all("198.51.100" not in item.limit_key for item in items)
    assert all(item.expires in (1_800_000_060, 1_800_000_120) for item in items)


def test_a_lockout_holds_until_its_window_ends(tables):
    clock = Clock(1_800_000_000.0)
    limiter = RateLimiter(DynamoCounterStore(), clock)
    lockout = Rate(2, 900)
    limiter.check_lockout("token-failure", "ann@example.org", lockout)
    limiter.record_failure("token-failure", "ann@example.org", lockout)
    limiter.record_failure("token-failure", "ann@example.org", lockout)
    with pytest.raises(LimitReached) as locked:
        limiter.check_lockout("token-failure", "ann@example.org", lockout)
    assert locked.value.retry_after_s == 900
    clock.now += 900
    limiter.check_lockout("token-failure", "ann@example.org", lockout)


def test_usage_slots_slide_with_their_expiries(tables):
    clock = Clock(1_800_000_000.0)
    slots = UsageSlots(DynamoSlotStore(), clock)
    first = slots.claim("cus-a", "ndvi", 2, 3600, holder="o-1")
    clock.now += 600
    slots.claim("cus-a", "ndvi", 2, 3600, holder="o-2")
    with pytest.raises(LimitReached) as full:
        slots.claim("cus-a", "ndvi", 2, 3600, holder="o-3")
    assert full.value.retry_at == 1_800_003_600  # when the oldest slot frees
    assert full.value.retry_after_s == 3000
    slots.claim("cus-a", "zonal", 2, 3600, holder="o-4")  # another service has its own slots
    clock.now = 1_800_003_600
    assert slots.claim("cus-a", "ndvi", 2, 3600, holder="o-5") == first  # the expired slot is taken again


def test_a_released_slot_is_free_and_only_its_holder_releases_it(tables):
    slots = UsageSlots(DynamoSlotStore(), Clock())
    key = slots.claim("cus-a", "ndvi", 1, 3600, holder="o-1")
    slots.release(key, "o-other")  # not its holder: nothing happens
    with pytest.raises(LimitReached):
        slots.claim("cus-a", "ndvi", 1, 3600, holder="o-2")
    slots.release(key, "o-1")
    assert slots.claim("cus-a", "ndvi", 1, 3600, holder="o-2") == key


def test_a_limit_of_zero_refuses_every_order(tables):
    with pytest.raises(LimitReached) as refused:
        UsageSlots(DynamoSlotStore(), Clock()).claim("cus-a", "ndvi", 0, 60, holder="o-1")
    assert refused.value.retry_after_s == 60

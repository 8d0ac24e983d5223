"""Limits that hold under parallel requests: fixed-window rate limits, lockouts after failed logins and
the sliding-window usage slots of order limits.

Every decision rests on one atomic write (a counter incremented, a slot claimed conditionally), never on
a read followed by a write, so N parallel requests cannot all pass a check that only one may pass. Plain
Python: the atomic operations come in through the ports below (DynamoDB in `stratus.store.limits`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol


@dataclass(frozen=True)
class Rate:
    """At most `limit` events per subject in each fixed window of `window_s` seconds."""

    limit: int
    window_s: int

    @classmethod
    def of(cls, spec: tuple[int, int]) -> "Rate":
        return cls(*spec)


class CounterStore(Protocol):
    def increment(self, key: str, expires: int) -> int:
        """Adds one to the counter `key` (made with expiry `expires`, epoch seconds, if absent); returns
        the new value. Atomic."""
        ...

    def value(self, key: str) -> int:
        """The counter's value, 0 if absent."""
        ...


class SlotStore(Protocol):
    def expiries(self, keys: list[str]) -> dict[str, float]:
        """Expiry (epoch seconds) of each slot of `keys` that has an item, expired or not."""
        ...

    def claim(self, key: str, holder: str, now: float, expires: float) -> bool:
        """Takes the slot if it is absent or expired at `now` (a conditional write); False otherwise."""
        ...

    def release(self, key: str, holder: str) -> None:
        """Frees the slot if `holder` still holds it."""
        ...


class LimitReached(Exception):
    """A limit refused the request; `retry_at` (epoch seconds) is when it would pass."""

    def __init__(self, retry_at: float, now: float) -> None:
        super().__init__(f"limit reached until {retry_at}")
        self.retry_at = retry_at
        self.retry_after_s = max(1, math.ceil(retry_at - now))


def subject_digest(subject: str) -> str:
    """Counter keys hold a digest, not the e-mail address or IP address itself."""
    return hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]


class RateLimiter:
    """Fixed windows: the counter of a window is its own item (the window's start is in the key), so a
    new window starts at zero without a reset write. A burst at a window's edge can reach twice the rate."""

    def __init__(self, counters: CounterStore, clock: Callable[[], float] = time.time) -> None:
        self._counters = counters
        self._clock = clock

    def _window(self, name: str, subject: str, rate: Rate) -> tuple[str, float, float]:
        now = self._clock()
        start = int(now // rate.window_s) * rate.window_s
        return f"rate#{name}#{subject_digest(subject)}#{start}", now, start + rate.window_s

    def hit(self, name: str, subject: str, rate: Rate) -> None:
        """Counts one request of `subject`; raises `LimitReached` past `rate.limit` in this window."""
        key, now, end = self._window(name, subject, rate)
        if self._counters.increment(key, int(end)) > rate.limit:
            raise LimitReached(end, now)

    def check_lockout(self, name: str, subject: str, rate: Rate) -> None:
        """Raises `LimitReached` while `subject` has `rate.limit` recorded failures in this window."""
        key, now, end = self._window(name, subject, rate)
        if self._counters.value(key) >= rate.limit:
            raise LimitReached(end, now)

    def record_failure(self, name: str, subject: str, rate: Rate) -> None:
        key, _, end = self._window(name, subject, rate)
        self._counters.increment(key, int(end))


class UsageSlots:
    """A sliding-window usage limit of `limit` orders per `interval_s`: slot k (k < limit) of a customer
    and service is an item held for `interval_s` seconds by the order that claimed it. An order claims
    any absent or expired slot with a conditional write; when all are held, the earliest expiry is the
    true time of the next possible order. Lowering a limit leaves slots above it unused (they expire)."""

    def __init__(self, slots: SlotStore, clock: Callable[[], float] = time.time) -> None:
        self._slots = slots
        self._clock = clock

    @staticmethod
    def keys(customer_id: str, service_id: str, limit: int) -> list[str]:
        return [f"usage#{customer_id}#{service_id}#{k}" for k in range(limit)]

    def claim(self, customer_id: str, service_id: str, limit: int, interval_s: int, holder: str) -> str:
        """The slot claimed for `holder`; raises `LimitReached` when all are held."""
        now = self._clock()
        if limit <= 0:
            raise LimitReached(now + interval_s, now)
        keys = self.keys(customer_id, service_id, limit)
        for _ in range(2):  # the reads are a hint; the conditional write decides
            held = self._slots.expiries(keys)
            for key in keys:
                if held.get(key, 0) <= now and self._slots.claim(key, holder, now, now + interval_s):
                    return key
        held = self._slots.expiries(keys)
        now = self._clock()
        retry_at = min(held.values()) if len(held) == len(keys) else now + 1
        raise LimitReached(max(retry_at, now), now)

    def release(self, key: str, holder: str) -> None:
        self._slots.release(key, holder)

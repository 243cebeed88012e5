"""Flow control for the initial copy: caps the bytes read per second from the service database.

One Throttle is shared by every reader; it books each read on a common schedule and makes the
reader wait until the schedule says the bytes were allowed (virtual scheduling, like a token bucket).
Given a `flow_source`, it asks it again every few seconds: a DBA's Modify Flow Control applies to the
rest of a copy already under way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from engine.spec import FlowControl

# Reads may run this far ahead of the schedule without waiting, so small reads are not slowed by
# sleeps shorter than the scheduler could honour anyway.
BURST_SECONDS = 0.25
FLOW_REFRESH_SECONDS = 2.0  # how often a running copy looks at the task's flow control again


class Throttle:
    """`consume(n)` after reading n bytes from the source; blocks while over the configured rate."""

    def __init__(
        self,
        flow: FlowControl | None,
        now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], object] = time.sleep,
        burst_seconds: float = BURST_SECONDS,
        flow_source: Callable[[], FlowControl | None] | None = None,
        refresh_seconds: float = FLOW_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._flow = flow
        self._now = now
        self._sleep = sleep
        self._burst = burst_seconds
        self._lock = threading.Lock()
        self._epoch: datetime | None = None
        self._booked_until: float | None = None  # the schedule: when the bytes read so far are allowed
        self._flow_source = flow_source
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._next_refresh = monotonic() + refresh_seconds
        self.bytes_consumed = 0
        self.sleep_requested = 0.0
        # bytes booked under each limit (bytes per second; None: unlimited), and how often the limit changed
        self.bytes_by_limit: dict[int | None, int] = {}
        self.flow_changes = 0

    @property
    def flow(self) -> FlowControl | None:
        return self._flow

    def limit_now(self) -> int | None:
        """Bytes per second allowed right now (None: unlimited)."""
        if self._flow is None:
            return None
        return self._flow.limit_at(self._now().time())

    def _refresh_flow(self) -> None:
        """Ask flow_source again when it is time (one reader asks; the others go on)."""
        if self._flow_source is None:
            return
        with self._lock:
            t = self._monotonic()
            if t < self._next_refresh:
                return
            self._next_refresh = t + self._refresh_seconds
        try:
            flow = self._flow_source()
        except Exception:  # noqa: BLE001 - the store busy or gone for a moment: keep the limit we have
            return
        with self._lock:
            if flow != self._flow:
                # a new limit starts a new schedule: neither the debt nor the credit of the old one carries over
                self._flow, self._epoch, self._booked_until = flow, None, None
                self.flow_changes += 1

    def consume(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        self._refresh_flow()
        with self._lock:
            self.bytes_consumed += nbytes
            if self._flow is None:
                self.bytes_by_limit[None] = self.bytes_by_limit.get(None, 0) + nbytes
                return
            now = self._now()
            limit = self._flow.limit_at(now.time())
            self.bytes_by_limit[limit] = self.bytes_by_limit.get(limit, 0) + nbytes
            if not limit:
                # Outside the windows: unlimited, and the debt of a window does not carry over.
                self._booked_until = None
                return
            # seconds since the first read: small floats, so the schedule does not drift by rounding
            if self._epoch is None:
                self._epoch = now
            t = (now - self._epoch).total_seconds()
            start = t if self._booked_until is None else max(self._booked_until, t)
            self._booked_until = start + nbytes / limit
            delay = self._booked_until - t - self._burst
            if delay <= 0:
                return
            self.sleep_requested += delay
        self._sleep(delay)

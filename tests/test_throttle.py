"""Flow control: the throttle keeps reads at the configured MB/s inside its windows, on a fake clock."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

from engine.spec import FlowControl, TimeWindow
from engine.throttle import BURST_SECONDS, Throttle

MB = 1024 * 1024


class FakeClock:
    """Local wall clock that only moves when someone sleeps; records every sleep asked for."""

    def __init__(self, start: datetime):
        self.t = start
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.t += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.t += timedelta(seconds=seconds)


def test_reads_are_held_to_the_limit_all_day():
    clock = FakeClock(datetime(2026, 3, 1, 14, 0))
    throttle = Throttle(FlowControl(max_mb_s=2), now=clock.now, sleep=clock.sleep)
    for _ in range(100):
        throttle.consume(100 * 1024)  # 10,000 KiB in all = 4.88 s at 2 MiB/s
    expected = 100 * 100 * 1024 / (2 * MB)
    assert throttle.bytes_consumed == 100 * 100 * 1024
    assert expected - BURST_SECONDS - 1e-3 <= sum(clock.sleeps) <= expected
    assert throttle.sleep_requested == sum(clock.sleeps)
    # the reader never ran more than the burst ahead of the schedule
    elapsed = (clock.now() - datetime(2026, 3, 1, 14, 0)).total_seconds()
    assert elapsed >= expected - BURST_SECONDS - 1e-3


def test_no_flow_control_never_waits_but_still_counts():
    clock = FakeClock(datetime(2026, 3, 1, 14, 0))
    throttle = Throttle(None, now=clock.now, sleep=clock.sleep)
    for _ in range(50):
        throttle.consume(10 * MB)
    assert clock.sleeps == []
    assert throttle.bytes_consumed == 500 * MB


def test_outside_the_windows_reads_are_unlimited():
    flow = FlowControl(max_mb_s=1, windows=(TimeWindow(time(8, 0), time(18, 0)),))
    clock = FakeClock(datetime(2026, 3, 1, 20, 0))  # evening: outside 08:00-18:00
    throttle = Throttle(flow, now=clock.now, sleep=clock.sleep)
    for _ in range(20):
        throttle.consume(5 * MB)
    assert clock.sleeps == []

    clock.t = datetime(2026, 3, 1, 9, 0)  # office hours: 1 MiB/s
    for _ in range(10):
        throttle.consume(MB)
    assert 10 - BURST_SECONDS - 1e-3 <= sum(clock.sleeps) <= 10


def test_debt_from_a_window_does_not_carry_over_after_it_closes():
    flow = FlowControl(max_mb_s=1, windows=(TimeWindow(time(8, 0), time(9, 0)),))
    clock = FakeClock(datetime(2026, 3, 1, 8, 59, 59))
    throttle = Throttle(flow, now=clock.now, sleep=lambda s: None)  # a reader that could not sleep
    throttle.consume(50 * MB)
    clock.t = datetime(2026, 3, 1, 9, 0, 1)
    slept: list[float] = []
    throttle._sleep = slept.append  # noqa: SLF001 - from now on, record
    throttle.consume(50 * MB)
    assert slept == []


def test_small_reads_within_the_burst_do_not_sleep():
    clock = FakeClock(datetime(2026, 3, 1, 12, 0))
    throttle = Throttle(FlowControl(max_mb_s=10), now=clock.now, sleep=clock.sleep)
    throttle.consume(MB)  # 0.1 s worth, under the 0.25 s burst
    assert clock.sleeps == []


def test_readers_in_parallel_share_one_budget():
    clock = FakeClock(datetime(2026, 3, 1, 12, 0))
    throttle = Throttle(FlowControl(max_mb_s=1), now=clock.now, sleep=clock.sleep)

    def reader() -> None:
        for _ in range(25):
            throttle.consume(64 * 1024)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 4 x 25 x 64 KiB = 6.25 MiB: the shared schedule books 6.25 s whatever the interleaving
    assert throttle.bytes_consumed == 100 * 64 * 1024
    # the fake clock only moves by sleeping, so the sleeps add up to the whole schedule
    assert sum(clock.sleeps) >= 6.25 - BURST_SECONDS - 1e-3
    assert throttle._booked_until is not None  # noqa: SLF001
    assert throttle._booked_until >= 6.25 - 1e-3  # noqa: SLF001 - seconds after the first read

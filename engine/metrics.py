"""Monitoring samples of a DR task (delay, RTO estimate, throughput), stored and downsampled as they age.

Raw samples every RAW_INTERVAL s kept 1 h, then 1-minute averages kept 24 h, then 10-minute averages kept
7 days: at most ~720 + 1,380 + 864 (< 3,100) rows per task, a few hundred KB of SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.store import Store

RAW_INTERVAL = 5  # seconds between samples the runner stores
# (age from which a resolution is folded into the next, that next resolution in seconds)
TIERS = ((timedelta(hours=1), 0, 60), (timedelta(hours=24), 60, 600))
KEEP = timedelta(days=7)  # nothing older survives
DOWNSAMPLE_EVERY = 60.0  # seconds; the runner calls downsample() at most this often


@dataclass(frozen=True)
class MetricSample:
    time: datetime  # local naive datetime like the rest of the store
    delay_seconds: float | None  # RPO: how far the DR side is behind the service side
    rto_seconds: float | None  # estimate of the time to apply what is queued (None: unknown)
    rows_per_second: float  # rows applied per second
    events_per_second: float  # events (transactions/DDL) applied per second
    bytes_per_second: float  # binlog bytes read per second
    resolution: int = 0  # seconds one sample stands for (0 = raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(timespec="seconds"),
            "delay_seconds": _round(self.delay_seconds),
            "rto_seconds": _round(self.rto_seconds),
            "rows_per_second": round(self.rows_per_second, 1),
            "events_per_second": round(self.events_per_second, 1),
            "bytes_per_second": round(self.bytes_per_second, 1),
            "resolution": self.resolution,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _values(sample: MetricSample) -> dict[str, Any]:
    return {
        "time": sample.time,
        "resolution": sample.resolution,
        "delay_seconds": sample.delay_seconds,
        "rto_seconds": sample.rto_seconds,
        "rows_per_second": sample.rows_per_second,
        "events_per_second": sample.events_per_second,
        "bytes_per_second": sample.bytes_per_second,
    }


def _sample(row: dict[str, Any]) -> MetricSample:
    return MetricSample(
        time=row["time"],
        delay_seconds=row["delay_seconds"],
        rto_seconds=row["rto_seconds"],
        rows_per_second=row["rows_per_second"] or 0.0,
        events_per_second=row["events_per_second"] or 0.0,
        bytes_per_second=row["bytes_per_second"] or 0.0,
        resolution=row["resolution"] or 0,
    )


def record_sample(store: Store, name: str, sample: MetricSample) -> None:
    store.add_metric_sample(name, **_values(sample))


def samples(store: Store, name: str, since: datetime | None = None) -> list[MetricSample]:
    """Oldest first; older stretches come at coarser resolutions."""
    return [_sample(r) for r in store.metric_samples(name, since=since)]


def aggregate(rows: Iterable[MetricSample], bucket: datetime, resolution: int) -> MetricSample:
    """One sample standing for `rows`: delay and RTO are the MAX (a spike must not vanish), rates the mean."""
    rows = list(rows)
    delays = [r.delay_seconds for r in rows if r.delay_seconds is not None]
    rtos = [r.rto_seconds for r in rows if r.rto_seconds is not None]
    n = len(rows)
    return MetricSample(
        time=bucket,
        delay_seconds=max(delays) if delays else None,
        rto_seconds=max(rtos) if rtos else None,
        rows_per_second=sum(r.rows_per_second for r in rows) / n,
        events_per_second=sum(r.events_per_second for r in rows) / n,
        bytes_per_second=sum(r.bytes_per_second for r in rows) / n,
        resolution=resolution,
    )


def _floor(t: datetime, seconds: int) -> datetime:
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = int((t - midnight).total_seconds()) // seconds * seconds
    return midnight + timedelta(seconds=offset)


def downsample(store: Store, name: str, now: datetime | None = None) -> None:
    """Fold aged samples into the next resolution and drop what is older than 7 days."""
    now = now or datetime.now()
    for age, resolution, coarser in TIERS:
        # whole buckets only: a bucket straddling the cut would be folded twice into two samples
        cut = _floor(now - age, coarser)
        rows = store.metric_samples(name, before=cut, resolution=resolution)
        if not rows:
            continue
        buckets: dict[datetime, list[MetricSample]] = {}
        for row in rows:
            buckets.setdefault(_floor(row["time"], coarser), []).append(_sample(row))
        folded = [_values(aggregate(group, bucket, coarser)) for bucket, group in sorted(buckets.items())]
        store.replace_metric_samples(name, [r["id"] for r in rows], folded)
    store.delete_metric_samples(name, before=now - KEEP)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '1h', '24h', '7d' -> timedelta; ValueError saying what is accepted otherwise."""
    m = _DURATION.match(text or "")
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; use a positive number with s, m, h or d, e.g. 90s, 15m, 1h, 7d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def backlog_bytes(binary_logs: list[tuple[str, int]], file: str, pos: int) -> int | None:
    """Binlog bytes the source has written past (file, pos), from SHOW BINARY LOGS; None if file is gone."""
    names = [n for n, _ in binary_logs]
    if file not in names:
        return None
    i = names.index(file)
    return max(0, binary_logs[i][1] - pos) + sum(size for _, size in binary_logs[i + 1 :])


def estimate_rto(backlog: int | None, apply_bytes_per_second: float | None, caught_up: bool) -> float | None:
    """Seconds to apply what is queued: binlog bytes between the DR checkpoint and the source's end of
    binlog, over the recent apply rate in the same binlog bytes. Honest about what it is: it assumes
    the backlog applies at the rate just seen (a backlog of another table mix may go faster or slower),
    and it counts bytes of filtered databases, which are skipped quickly. None when no rate is known."""
    if caught_up or backlog == 0:
        return 0.0
    if backlog is None or not apply_bytes_per_second:
        return None
    return backlog / apply_bytes_per_second

"""Monitoring samples (engine.metrics): the runner stores them while it streams, `drs task metrics` shows
them, they are downsampled as they age (spikes kept, rows bounded), and the delay stays honest after idle.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from dr_helpers import wait_for
from test_runner_e2e import create_task, drs, show, start_run, stop
from test_store import full_spec

from engine import metrics
from engine.metrics import MetricSample, downsample, parse_duration, record_sample, samples
from engine.store import Store


def test_parse_duration():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("24H") == timedelta(hours=24)
    assert parse_duration("7d") == timedelta(days=7)
    for bad in ("", "1", "h", "-5m", "0s", "1w", "1h30m", "abc"):
        with pytest.raises(ValueError, match="use a positive number with s, m, h or d"):
            parse_duration(bad)


def test_downsampling_keeps_spikes_and_bounds_the_rows(tmp_path):
    store = Store(tmp_path / "home")
    store.create_task(full_spec("orders-dr"))
    now = datetime(2025, 3, 10, 12, 0, 7)

    def sample(t: datetime, delay: float, rows: float, resolution: int = 0) -> dict:
        return {"time": t, "resolution": resolution, "delay_seconds": delay, "rto_seconds": 0.0,
                "rows_per_second": rows, "events_per_second": rows / 10, "bytes_per_second": rows * 100}  # fmt: skip

    fresh = [sample(now - timedelta(seconds=5 * i), 1.0, 100.0) for i in range(3 * 720)]  # 3 h of raw samples
    spike_at = now - timedelta(hours=2, minutes=30)
    fresh = [sample(r["time"], 250.0 if abs((r["time"] - spike_at).total_seconds()) < 3 else 1.0, r["rows_per_second"]) for r in fresh]
    minutes = [sample(now - timedelta(hours=3, minutes=i), 2.0, 50.0, 60) for i in range(1, 45 * 60)]  # to 2 days back
    old_spike = now - timedelta(days=1, hours=6, minutes=3)
    minutes.append(sample(old_spike, 900.0, 50.0, 60))
    tens = [sample(now - timedelta(days=2, minutes=10 * i), 3.0, 10.0, 600) for i in range(1, 9 * 144)]  # to 11 days back
    store.replace_metric_samples("orders-dr", [], fresh + minutes + tens)

    downsample(store, "orders-dr", now=now)
    kept = samples(store, "orders-dr")
    by_res = {res: [s for s in kept if s.resolution == res] for res in (0, 60, 600)}
    assert len(kept) == sum(len(v) for v in by_res.values())
    assert len(kept) <= 3100
    # raw only for the last hour, 1-minute only for the last day, nothing beyond 7 days
    assert min(s.time for s in by_res[0]) >= now - timedelta(hours=1, minutes=1)
    assert min(s.time for s in by_res[60]) >= now - timedelta(hours=24, minutes=10)
    assert max(s.time for s in by_res[60]) < now - timedelta(minutes=59)
    assert min(s.time for s in kept) >= now - timedelta(days=7)
    # (folding takes whole buckets only, so up to one bucket more of the finer resolution stays)
    assert len(by_res[0]) <= 720 + 12 and len(by_res[60]) <= 1380 + 10 and len(by_res[600]) <= 6 * 144 + 1
    # the delay of an average is the maximum: the spikes survive, throughputs are averaged
    spike = [s for s in by_res[60] if s.time <= spike_at < s.time + timedelta(minutes=1)]
    assert spike and spike[0].delay_seconds == 250.0 and spike[0].rows_per_second == pytest.approx(100.0)
    old = [s for s in by_res[600] if s.time <= old_spike < s.time + timedelta(minutes=10)]
    assert old and old[0].delay_seconds == 900.0 and old[0].rows_per_second == pytest.approx(50.0)
    assert [s.time for s in kept] == sorted(s.time for s in kept)  # oldest first
    # idempotent: nothing more to fold at the same moment
    downsample(store, "orders-dr", now=now)
    assert len(samples(store, "orders-dr")) == len(kept)
    record_sample(store, "orders-dr", MetricSample(now, None, None, 0.0, 0.0, 0.0))
    assert samples(store, "orders-dr", since=now)[-1].delay_seconds is None
    store.close()


def test_backlog_and_rto_estimate():
    logs = [("binlog.000003", 1000), ("binlog.000004", 500), ("binlog.000005", 200)]
    assert metrics.backlog_bytes(logs, "binlog.000004", 300) == 200 + 200
    assert metrics.backlog_bytes(logs, "binlog.000005", 200) == 0
    assert metrics.backlog_bytes(logs, "binlog.000001", 4) is None
    assert metrics.estimate_rto(400, 100.0, caught_up=False) == 4.0
    assert metrics.estimate_rto(400, 100.0, caught_up=True) == 0.0
    assert metrics.estimate_rto(400, None, caught_up=False) is None


def writes(server, stop_event: threading.Event, counter: list[int], *, timestamp_offset: int = 0) -> None:
    conn = server.root("mon")
    try:
        with conn.cursor() as cur:
            if timestamp_offset:
                # the session's clock (and so its binlog event timestamps) lags, as on a source that is
                # itself a replica replaying old events: the delay must not take those for the truth
                cur.execute("SET TIMESTAMP = UNIX_TIMESTAMP() - %s", (timestamp_offset,))
            while not stop_event.is_set():
                counter[0] += 1
                cur.execute("INSERT INTO mon.t (v) VALUES (%s)", (f"row {counter[0]}",))
                if timestamp_offset:
                    cur.execute("SET TIMESTAMP = UNIX_TIMESTAMP() - %s", (timestamp_offset,))
                time.sleep(0.002)  # a small load, not a flood
    finally:
        conn.close()


def test_samples_while_streaming_and_honest_delay_after_idle(dbs, home, tmp_path):
    dbs.source.sql("CREATE DATABASE mon", "CREATE TABLE mon.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))")
    create_task(home, dbs, "mon-dr", tmp_path, databases=["mon"])
    proc = start_run(home, "mon-dr")
    stop_event, counter = threading.Event(), [0]
    try:
        wait_for(lambda: show(home, "mon-dr")["status"] == "replicating", 120, 0.3, "replicating")
        thread = threading.Thread(target=writes, args=(dbs.source, stop_event, counter), daemon=True)
        thread.start()

        def busy_samples() -> list[dict]:
            data = json.loads(drs(home, "task", "metrics", "mon-dr", "--json", check=True).stdout)
            return [s for s in data if s["rows_per_second"] > 0]

        found = wait_for(busy_samples, 60, 0.5, "a sample with rows applied")
        s = found[-1]
        assert set(s) == {"time", "delay_seconds", "rto_seconds", "rows_per_second", "events_per_second", "bytes_per_second", "resolution"}
        assert s["events_per_second"] > 0 and s["bytes_per_second"] > 0 and s["resolution"] == 0
        assert s["delay_seconds"] is not None and s["rto_seconds"] is not None
        stop_event.set()
        thread.join(30)
        text = drs(home, "task", "metrics", "mon-dr", "--since", "15m", check=True).stdout
        assert "DELAY s" in text and "ROWS/s" in text
        bad = drs(home, "task", "metrics", "mon-dr", "--since", "soon")
        assert bad.returncode == 2 and "--since:" in bad.stderr

        # idle (heartbeats only), then a burst whose binlog timestamps are 100 s old
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM mon.t")[0][0] == counter[0], 60, 0.2, "caught up")
        wait_for(lambda: show(home, "mon-dr")["delay_seconds"] == 0, 30, 0.3, "delay 0 while idle")
        store, seen = Store(home), []
        watching = threading.Event()

        def watch() -> None:  # what the GUI and `drs task show` would read during the burst
            while not watching.is_set():
                seen.append(store.get_task("mon-dr").delay_seconds)
                time.sleep(0.1)

        idle_from = time.monotonic()
        wait_for(lambda: time.monotonic() - idle_from > 6, 20, 0.5, "an idle stretch")
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        stop_event.clear()
        before = counter[0]
        thread = threading.Thread(target=writes, args=(dbs.source, stop_event, counter), kwargs={"timestamp_offset": 100}, daemon=True)
        thread.start()
        wait_for(lambda: counter[0] > before + 300, 60, 0.1, "a burst")
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM mon.t")[0][0] > before + 200, 60, 0.2, "burst applied")
        stop_event.set()
        thread.join(30)
        wait_for(lambda: dbs.target.sql("SELECT COUNT(*) FROM mon.t")[0][0] == counter[0], 60, 0.2, "caught up again")
        wait_for(lambda: show(home, "mon-dr")["delay_seconds"] == 0, 30, 0.3, "delay back to 0")
        watching.set()
        watcher.join(5)
        delays = [d for d in seen if d is not None]
        # generous bound: the old code reported ~100 s here (the age of the events, not the lag)
        assert delays and max(delays) < 50, max(delays)
        store.close()
    finally:
        stop_event.set()
        code, _out, err = stop(proc)
    assert code == 0, err

"""The "Monitoring" tab of the task details: delay (RPO), RTO and throughput over the last hour/day/week.

Samples come from engine.metrics (written by the runner every few seconds, downsampled as they age),
read off the GUI thread when the tab is shown, when the range changes and every 5 s while visible.
pyqtgraph is imported only when the tab is first shown: it costs about half a second, which the app's
start-up should not pay. Colours follow the Qt palette (background, text), so a dark theme stays readable;
the curve colours are mid-tones that read on light and dark backgrounds alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QPalette, QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from engine import health
from engine.store import Store

from .task_model import format_delay
from .taskman import TaskManager

POLL_MS = 5000
RANGES: tuple[tuple[str, int], ...] = (("Last hour", 3600), ("Last 24 hours", 86400), ("Last 7 days", 7 * 86400))
STALE_AFTER = timedelta(seconds=60)  # a newer sample is expected every few seconds while the task runs

# (plot key, title, curves: (sample attribute, key name, colour), axis units for SI prefixes)
PLOTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...], str | None], ...] = (
    ("delay", "Seconds:",
     (("delay_seconds", "Delay (RPO)", "#2f7fd8"), ("rto_seconds", "RTO", "#e8710a")), None),
    ("rate", "Per second:",
     (("rows_per_second", "Rows/s", "#1a9e77"), ("events_per_second", "Events/s", "#9b59d0")), None),
    ("bytes", "Binlog read:", (("bytes_per_second", "Bytes/s", "#d6336c"),), "B/s"),
)  # fmt: skip


def format_bytes_rate(value: float) -> str:
    for factor, unit in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value:.0f} B/s"


def current_text(latest: Any | None, now: datetime | None = None) -> str:
    """The line above the charts: the newest sample's delay, RTO and throughput (rich text)."""
    if latest is None:
        return "No monitoring samples in this time range yet: they are recorded while the task replicates."

    def seconds(value: float | None) -> str:
        return "—" if value is None else (format_delay(value) or "0 s")

    parts = [
        f"Delay (RPO) <b>{seconds(latest.delay_seconds)}</b>",
        f"RTO <b>{seconds(latest.rto_seconds)}</b>",
        f"<b>{latest.rows_per_second:,.0f}</b> rows/s",
        f"{latest.events_per_second:,.0f} events/s",
        format_bytes_rate(latest.bytes_per_second),
    ]
    when = f"as of {latest.time:%Y-%m-%d %H:%M:%S}"
    if (now or datetime.now()) - latest.time > STALE_AFTER:
        when += " (no newer sample: is the task running?)"
    return "&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts) + f"&nbsp;&nbsp;&nbsp;<span>{when}</span>"


class MonitoringTab(QWidget):
    """Charts of one task's monitoring samples; built on first show."""

    updated = Signal(int)  # samples shown after a load

    def __init__(
        self,
        name: str,
        store: Store | None = None,
        taskman: TaskManager | None = None,
        parent: QWidget | None = None,
        *,
        poll_ms: int = POLL_MS,
    ):
        super().__init__(parent)
        self.name = name
        self.store = store
        self.taskman = taskman if taskman is not None or store is None else TaskManager(self)
        self.samples: list[Any] = []
        self.curves: dict[str, Any] = {}  # sample attribute -> pyqtgraph PlotDataItem
        self.plots: dict[str, Any] = {}  # plot key -> pyqtgraph PlotItem
        self.charts: Any = None  # the pyqtgraph GraphicsLayoutWidget, once built
        self._loading = False
        self._generation = 0

        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.current_label = QLabel("Loading…" if store is not None else "")
        self.current_label.setObjectName("monitoringCurrent")
        self.current_label.setTextFormat(Qt.TextFormat.RichText)
        self.current_label.setWordWrap(True)
        bar.addWidget(self.current_label, 1)
        bar.addWidget(QLabel("Range:"))
        self.range_combo = QComboBox()
        self.range_combo.setAccessibleName("Time range")
        for label, seconds in RANGES:
            self.range_combo.addItem(label, seconds)
        self.range_combo.currentIndexChanged.connect(lambda: self.reload(new_range=True))
        bar.addWidget(self.range_combo)
        layout.addLayout(bar)
        layout.addLayout(self._build_threshold_bar())
        self.chart_area = QVBoxLayout()
        layout.addLayout(self.chart_area, 1)

        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(poll_ms)
        self.poll_timer.timeout.connect(self.reload)

    # -- the task's delay alarm threshold ----------------------------------------------------------
    def _build_threshold_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Alarm when the delay is over"))
        self.threshold_spin = QSpinBox()
        self.threshold_spin.setAccessibleName("Delay alarm threshold")
        self.threshold_spin.setRange(1, 7 * 86400)
        self.threshold_spin.setSuffix(" s")
        self.threshold_spin.setValue(int(health.DEFAULT_DELAY_THRESHOLD))
        self.threshold_spin.setToolTip("Health turns alarm over this delay and warning over half of it")
        bar.addWidget(self.threshold_spin)
        self.threshold_save = QPushButton("Save")
        self.threshold_save.setEnabled(self.store is not None)
        self.threshold_save.clicked.connect(self.save_threshold)
        bar.addWidget(self.threshold_save)
        self.threshold_note = QLabel("")
        bar.addWidget(self.threshold_note, 1)
        if self.store is not None:
            store, name = self.store, self.name
            self._run(lambda: health.delay_threshold(store.get_task(name)),
                      lambda value: self.threshold_spin.setValue(int(value)), lambda exc: None)  # fmt: skip
        return bar

    def save_threshold(self) -> None:
        if self.store is None:
            return
        store, name, seconds = self.store, self.name, float(self.threshold_spin.value())

        def saved(_: Any) -> None:
            self.threshold_note.setText(f"Saved: alarm over {seconds:,.0f} s, warning over {seconds / 2:,.0f} s")

        def failed(exc: BaseException) -> None:
            self.threshold_note.setText(f"Not saved: {exc}")

        self._run(lambda: health.set_delay_threshold(store, name, seconds), saved, failed)

    # -- charts ----------------------------------------------------------------------------------
    def range_seconds(self) -> int:
        return int(self.range_combo.currentData())

    def set_range(self, seconds: int) -> None:
        self.range_combo.setCurrentIndex(self.range_combo.findData(seconds))

    def ensure_charts(self) -> None:
        """Import pyqtgraph and build the plots (first show only)."""
        if self.charts is not None:
            return
        import pyqtgraph as pg

        charts = pg.GraphicsLayoutWidget()
        charts.setObjectName("monitoringCharts")
        charts.ci.setSpacing(4)
        first = None
        for row, (key, _title, curves, units) in enumerate(PLOTS):
            plot = charts.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
            plot.showGrid(x=True, y=True, alpha=0.18)
            plot.setMouseEnabled(x=True, y=False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(56)
            if units:
                plot.getAxis("left").setLabel(units=units)
                plot.getAxis("left").enableAutoSIPrefix(True)
            plot.setLimits(yMin=0)
            for attribute, _name, colour in curves:
                self.curves[attribute] = plot.plot([], [], pen=pg.mkPen(colour, width=2), connect="finite")
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            self.plots[key] = plot
        self.charts = charts
        self.chart_area.addWidget(charts, 1)
        self._apply_palette()
        self._plot()

    def _apply_palette(self) -> None:
        if self.charts is None:
            return
        palette = self.palette()
        background = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
        self.charts.setBackground(background)
        for key, title, curves, _units in PLOTS:
            plot = self.plots[key]
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(text)
                axis.setTextPen(text)
            # The key is in the title, in the curves' colours: a legend inside the plot would hide data.
            keys = "&nbsp;&nbsp;&nbsp;".join(
                f'<span style="color:{colour}; font-weight:600">━ {name}</span>' for _a, name, colour in curves
            )
            plot.setTitle(
                f'<span style="color:{text.name()}">{title}</span>&nbsp;&nbsp;&nbsp;&nbsp;{keys}', size="9pt"
            )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    def _plot(self) -> None:
        if self.charts is None:
            return
        import numpy as np

        times = np.array([s.time.timestamp() for s in self.samples], dtype=float)
        for key, _title, curves, _units in PLOTS:
            top = 0.0
            for attribute, _name, _colour in curves:
                values = [getattr(s, attribute) for s in self.samples]
                ys = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
                self.curves[attribute].setData(times, ys)
                if np.isfinite(ys).any():
                    top = max(top, float(np.nanmax(ys)))
            # From zero (a rate or a delay read against its baseline), with room above for the legend.
            self.plots[key].setYRange(0, top * 1.25 if top > 0 else 1, padding=0)
        now = datetime.now().timestamp()
        self.plots["delay"].setXRange(now - self.range_seconds(), now, padding=0.01)

    # -- data ------------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> None:
        assert self.taskman is not None
        self.taskman.run_for(self, fn, on_done, on_error)

    def reload(self, new_range: bool = False) -> None:
        """Read the samples of the selected range off the GUI thread, then redraw."""
        if self.store is None:
            return
        if new_range:
            self._generation += 1
        elif self._loading:
            return
        self._loading = True
        generation = self._generation
        store, name = self.store, self.name
        since = datetime.now() - timedelta(seconds=self.range_seconds())

        def load() -> list[Any]:
            from engine.metrics import samples

            return samples(store, name, since)

        def loaded(result: list[Any]) -> None:
            self._loading = False
            if generation == self._generation:
                self.set_samples(result)

        def failed(exc: BaseException) -> None:
            self._loading = False
            if isinstance(exc, ModuleNotFoundError) and exc.name == "engine.metrics":
                self.current_label.setText("Monitoring is not available in this build (engine.metrics is missing).")
            else:
                self.current_label.setText(f"Cannot read the monitoring samples: {exc}")

        self._run(load, loaded, failed)

    def set_samples(self, samples: list[Any]) -> None:
        self.samples = list(samples)
        self.current_label.setText(current_text(self.samples[-1] if self.samples else None))
        self._plot()
        self.updated.emit(len(self.samples))

    # -- only while visible ------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.charts is None:
            # Let "Loading…" paint before the import blocks for a moment.
            QTimer.singleShot(0, self._first_show)
        elif self.store is not None:
            self.reload()
            self.poll_timer.start()

    def _first_show(self) -> None:
        if not shiboken6.isValid(self) or self.charts is not None:
            return
        self.ensure_charts()
        if self.store is not None and self.isVisible():
            self.reload()
            self.poll_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self.poll_timer.stop()
        super().hideEvent(event)

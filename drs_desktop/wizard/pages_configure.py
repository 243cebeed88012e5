"""Page 3, Configure DR: which databases to protect, flow control for the initial copy, Migrate Definer.

The database list comes from the service side (sizes from information_schema) on a TaskManager
thread; all checked stores databases=null ("every user database", including ones created later).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from drs_desktop.wizard.common import ErrorLabel, StatusLabel, error_text, guarded, human_size
from drs_desktop.wizard.models import DatabaseListModel, TextRowsModel
from engine.spec import MAX_WINDOWS, TimeWindow, check_databases, check_max_mb_s, check_windows, parse_clock

DEFAULT_WINDOWS = (("00:00", "06:00"), ("12:00", "14:00"), ("20:00", "24:00"))
DEFINER_YES = (
    "Objects (views, routines, triggers, events) get the DR side's task user as DEFINER, so they run "
    "there even when the original definer account does not exist."
)
DEFINER_NO = (
    "Objects keep their original DEFINER; create the same accounts on the DR database or they fail "
    "when they run."
)


class ConfigurePage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Configure DR")
        self.setSubTitle("Choose the databases to protect and how fast the initial copy may read.")
        self.wanted: list[str] | None = None  # a prefilled selection, applied when the list arrives
        self.loaded_for: tuple[Any, ...] | None = None
        self.load_error: str | None = None
        self._syncing = False
        self.loading = False

        # -- databases
        db_box = QGroupBox("Databases to protect (service side)")
        db_layout = QVBoxLayout(db_box)
        top = QHBoxLayout()
        self.all_check = QCheckBox("&All user databases (also those created later)")
        self.all_check.setChecked(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.reload_button = QPushButton("&Reload")
        top.addWidget(self.all_check)
        top.addStretch(1)
        top.addWidget(self.busy)
        top.addWidget(self.reload_button)
        db_layout.addLayout(top)
        self.db_model = DatabaseListModel(self)
        self.db_view = QListView()
        self.db_view.setModel(self.db_model)
        self.db_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.db_view.setMinimumHeight(90)
        db_layout.addWidget(self.db_view, 1)
        self.db_status = StatusLabel()
        self.db_error = ErrorLabel()
        db_layout.addWidget(self.db_status)
        db_layout.addWidget(self.db_error)

        # -- flow control
        flow_box = QGroupBox("Flow control (initial full copy)")
        flow_layout = QVBoxLayout(flow_box)
        row = QHBoxLayout()
        self.flow_off = QRadioButton("&No limit")
        self.flow_on = QRadioButton("&Limit to")
        self.flow_off.setChecked(True)
        self.flow_group = QButtonGroup(self)
        self.flow_group.addButton(self.flow_off)
        self.flow_group.addButton(self.flow_on)
        self.mb_spin = QSpinBox()
        # Wide range on purpose: engine.spec.check_max_mb_s says what is allowed (1-9999).
        self.mb_spin.setRange(0, 99999)
        self.mb_spin.setValue(50)
        self.mb_spin.setSuffix(" MB/s")
        self.all_day = QRadioButton("All &day")
        self.in_ranges = QRadioButton("In &time ranges")
        self.all_day.setChecked(True)
        self.when_group = QButtonGroup(self)
        self.when_group.addButton(self.all_day)
        self.when_group.addButton(self.in_ranges)
        row.addWidget(self.flow_off)
        row.addWidget(self.flow_on)
        row.addWidget(self.mb_spin)
        row.addSpacing(16)
        row.addWidget(self.all_day)
        row.addWidget(self.in_ranges)
        row.addStretch(1)
        flow_layout.addLayout(row)
        self.mb_error = ErrorLabel()
        flow_layout.addWidget(self.mb_error)
        ranges_row = QHBoxLayout()
        self.window_model = TextRowsModel(("Start (HH:MM)", "End (HH:MM)"), self)
        self.window_view = QTableView()
        self.window_view.setModel(self.window_model)
        self.window_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.window_view.verticalHeader().setVisible(False)
        self.window_view.setTabKeyNavigation(False)
        # Room for exactly the three ranges allowed, without a scroll bar.
        row_height = self.window_view.fontMetrics().height() + 8
        self.window_view.verticalHeader().setDefaultSectionSize(row_height)
        self.window_view.setFixedHeight(
            self.window_view.horizontalHeader().sizeHint().height() + 3 * row_height + 4
        )
        self.add_window_button = QPushButton("Add range")
        self.remove_window_button = QPushButton("Remove range")
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_window_button)
        buttons.addWidget(self.remove_window_button)
        buttons.addStretch(1)
        ranges_row.addWidget(self.window_view, 1)
        ranges_row.addLayout(buttons)
        self.ranges_widget = QWidget()
        self.ranges_widget.setLayout(ranges_row)
        ranges_row.setContentsMargins(0, 0, 0, 0)
        flow_layout.addWidget(self.ranges_widget)
        self.window_error = ErrorLabel()
        flow_layout.addWidget(self.window_error)

        # -- definer
        definer_box = QGroupBox("Migrate Definer to User")
        definer_layout = QGridLayout()
        definer_box.setLayout(definer_layout)
        self.definer_yes = QRadioButton("&Yes")
        self.definer_no = QRadioButton("N&o")
        self.definer_yes.setChecked(True)
        self.definer_group = QButtonGroup(self)
        self.definer_group.addButton(self.definer_yes)
        self.definer_group.addButton(self.definer_no)
        for row_no, (radio, text) in enumerate(
            ((self.definer_yes, DEFINER_YES), (self.definer_no, DEFINER_NO))
        ):
            explanation = QLabel(text)
            explanation.setWordWrap(True)
            definer_layout.addWidget(radio, row_no, 0, Qt.AlignmentFlag.AlignTop)
            definer_layout.addWidget(explanation, row_no, 1)
        definer_layout.setColumnStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(db_box, 1)
        layout.addWidget(flow_box)
        layout.addWidget(definer_box)

        self.all_check.toggled.connect(self._all_toggled)
        self.db_model.checksChanged.connect(self._db_checks_changed)
        self.reload_button.clicked.connect(self.load_databases)
        for w in (self.flow_off, self.flow_on, self.all_day, self.in_ranges):
            w.toggled.connect(self._flow_changed)
        self.mb_spin.valueChanged.connect(self.revalidate)
        self.window_model.dataChanged.connect(self.revalidate)
        self.window_model.rowsInserted.connect(self.revalidate)
        self.window_model.rowsRemoved.connect(self.revalidate)
        self.window_model.modelReset.connect(self.revalidate)
        self.add_window_button.clicked.connect(self.add_window)
        self.remove_window_button.clicked.connect(self.remove_selected_window)
        self.errors: dict[str, str] = {}
        self._flow_changed()

    # -- values ---------------------------------------------------------------------------------
    def checked_databases(self) -> list[str]:
        return self.db_model.checked_names()

    def databases(self) -> list[str] | None:
        """None means every user database (all boxes ticked)."""
        if self.all_check.isChecked() or self.db_model.rowCount() == 0 and self.wanted is None:
            return None
        if self.db_model.rowCount() == 0:
            return list(self.wanted or [])
        return self.checked_databases()

    def windows_text(self) -> list[tuple[str, str]]:
        return [(start.strip(), end.strip()) for start, end in self.window_model.values()]

    def flow_control(self) -> dict[str, Any] | None:
        if not self.flow_on.isChecked():
            return None
        windows = [] if self.all_day.isChecked() else [{"start": s, "end": e} for s, e in self.windows_text()]
        return {"max_mb_s": self.mb_spin.value(), "windows": windows}

    def spec_part(self) -> dict[str, Any]:
        return {
            "databases": self.databases(),
            "flow_control": self.flow_control(),
            "migrate_definer": self.definer_yes.isChecked(),
        }

    def fill(self, prefill: dict[str, Any]) -> None:
        databases = prefill.get("databases")
        self.wanted = list(databases) if databases is not None else None
        self.all_check.setChecked(databases is None)
        fc = prefill.get("flow_control")
        if fc:
            self.flow_on.setChecked(True)
            self.mb_spin.setValue(int(fc.get("max_mb_s", 50)))
            windows = fc.get("windows") or []
            self.window_model.set_rows([(str(w.get("start", "")), str(w.get("end", ""))) for w in windows])
            (self.in_ranges if windows else self.all_day).setChecked(True)
        else:
            self.flow_off.setChecked(True)
        (self.definer_yes if prefill.get("migrate_definer", True) else self.definer_no).setChecked(True)
        self.revalidate()

    # -- databases ------------------------------------------------------------------------------
    def initializePage(self) -> None:
        source_box = self.wizard().connections_page.source_box  # type: ignore[attr-defined]
        if self.loaded_for != source_box.key():
            self.load_databases()
        self.revalidate()

    def load_databases(self) -> None:
        wizard = self.wizard()
        source_box = wizard.connections_page.source_box  # type: ignore[attr-defined]
        key = source_box.key()
        endpoint = source_box.endpoint()
        backend = wizard.backend  # type: ignore[attr-defined]
        if self.db_model.rowCount():
            # Keep what the user chose when the list is read again.
            self.wanted = None if self.all_check.isChecked() else self.checked_databases()
        self.loaded_for = key
        self.load_error = None
        self.loading = True
        self.busy.setVisible(True)
        self.reload_button.setEnabled(False)
        self.db_status.show_plain("Reading the databases of the service database…")

        def done(rows: list[tuple[str, int]]) -> None:
            if self.loaded_for != key:
                return
            self.loading = False
            self.busy.setVisible(False)
            self.reload_button.setEnabled(True)
            self.set_databases(rows)

        def failed(exc: BaseException) -> None:
            if self.loaded_for != key:
                return
            self.loading = False
            self.busy.setVisible(False)
            self.reload_button.setEnabled(True)
            self.loaded_for = None
            self.load_error = f"Cannot list the databases: {error_text(exc)}"
            self.db_status.show_failure(self.load_error)
            self.revalidate()

        wizard.taskman.run(
            lambda: backend.database_sizes(endpoint), guarded(self, done), guarded(self, failed)
        )  # type: ignore[attr-defined]

    def set_databases(self, rows: list[tuple[str, int]]) -> None:
        self._syncing = True
        self.db_model.set_databases(rows, set(self.wanted) if self.wanted is not None else None)
        self._syncing = False
        total = self.db_model.total_size()
        self.db_status.show_plain(
            f"{len(rows)} user database(s), {human_size(total)} in all."
            if rows
            else "No user databases yet: the task will protect every user database created later."
        )
        self._sync_all_check()
        self.revalidate()

    def _all_toggled(self, on: bool) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.db_model.set_all(on)
        self._syncing = False
        self.revalidate()

    def _db_checks_changed(self) -> None:
        if self._syncing:
            return
        self._sync_all_check()
        self.revalidate()

    def _sync_all_check(self) -> None:
        if not self.db_model.rowCount():
            return
        all_on = self.db_model.all_checked()
        self._syncing = True
        self.all_check.setChecked(all_on)
        self._syncing = False

    # -- flow control ---------------------------------------------------------------------------
    def _flow_changed(self, *_: Any) -> None:
        on = self.flow_on.isChecked()
        self.mb_spin.setEnabled(on)
        self.all_day.setEnabled(on)
        self.in_ranges.setEnabled(on)
        ranges = on and self.in_ranges.isChecked()
        self.ranges_widget.setEnabled(ranges)
        if ranges and self.window_model.rowCount() == 0:
            self.add_window()
        self.revalidate()

    def add_window(self) -> None:
        used = {s for s, _ in self.windows_text()}
        start, end = next(((s, e) for s, e in DEFAULT_WINDOWS if s not in used), DEFAULT_WINDOWS[0])
        self.window_model.append_row((start, end))
        self.window_view.setCurrentIndex(self.window_model.index(self.window_model.rowCount() - 1, 0))

    def remove_selected_window(self) -> None:
        index = self.window_view.currentIndex()
        if index.isValid():
            self.window_model.remove_row(index.row())

    # -- rules ----------------------------------------------------------------------------------
    def revalidate(self, *_: Any) -> None:
        errors: dict[str, str] = {}
        if self.db_model.rowCount() and not self.all_check.isChecked():
            msg = check_databases(self.checked_databases())
            if msg:
                errors["databases"] = f"Databases: {msg}"
        if self.load_error:
            errors["load"] = self.load_error
        if self.flow_on.isChecked():
            msg = check_max_mb_s(self.mb_spin.value())
            if msg:
                errors["max_mb_s"] = f"Maximum speed {msg}"
            if self.in_ranges.isChecked():
                windows = []
                for i, (s, e) in enumerate(self.windows_text(), start=1):
                    start, end = parse_clock(s), parse_clock(e)
                    if start is None or end is None:
                        errors["windows"] = f"range {i}: times must be HH:MM between 00:00 and 24:00"
                        break
                    windows.append(TimeWindow(start, end))
                else:
                    msg = check_windows(windows)
                    if msg:
                        errors["windows"] = msg
        self.db_error.show_error(errors.get("databases"))
        self.mb_error.show_error(errors.get("max_mb_s"))
        self.window_error.show_error(errors.get("windows"))
        self.add_window_button.setEnabled(self.window_model.rowCount() < MAX_WINDOWS)
        self.errors = errors
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.errors and self.loaded_for is not None and not self.loading

"""Page 6, Start: start upon creation or at a time (engine.spec.check_start), a summary, Submit.

The summary shows every setting as it will be stored; passwords are always masked.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QButtonGroup,
    QDateTimeEdit,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from drs_desktop.wizard.common import ErrorLabel, StatusLabel
from engine.spec import check_start

TLS_TEXT = {"off": "off", "required": "required", "verify_ca": "verify CA"}


class StartPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Start")
        self.setSubTitle("When the task starts, and everything it will do. Submit creates the task.")
        self.submitting = False
        self.created = False

        self.now_radio = QRadioButton("Start &upon task creation")
        self.later_radio = QRadioButton("Start at a &specified time:")
        self.now_radio.setChecked(True)
        self.group = QButtonGroup(self)
        self.group.addButton(self.now_radio)
        self.group.addButton(self.later_radio)
        self.when_edit = QDateTimeEdit()
        self.when_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.when_edit.setCalendarPopup(True)
        soon = (datetime.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        self.when_edit.setDateTime(QDateTime(soon))
        self.when_edit.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.now_radio)
        row.addSpacing(24)
        row.addWidget(self.later_radio)
        row.addWidget(self.when_edit)
        row.addStretch(1)
        self.start_error = ErrorLabel()

        self.summary = QTextBrowser()
        self.summary.setOpenLinks(False)
        self.summary.setTabChangesFocus(True)
        self.submit_status = StatusLabel()

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.start_error)
        layout.addWidget(QLabel("Summary:"))
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.submit_status)

        self.now_radio.toggled.connect(self._changed)
        self.when_edit.dateTimeChanged.connect(self._changed)
        self.errors: dict[str, str] = {}

    # -- values ---------------------------------------------------------------------------------
    def start_at(self) -> datetime | None:
        if self.now_radio.isChecked():
            return None
        return self.when_edit.dateTime().toPython().replace(second=0, microsecond=0)

    def start_value(self) -> str:
        at = self.start_at()
        return "now" if at is None else at.isoformat(timespec="minutes")

    def fill(self, prefill: dict[str, Any]) -> None:
        start = prefill.get("start", "now")
        if isinstance(start, str) and start != "now":
            try:
                at = datetime.fromisoformat(start)
            except ValueError:
                return
            self.later_radio.setChecked(True)
            self.when_edit.setDateTime(QDateTime(at.replace(tzinfo=None)))

    # -- behaviour ------------------------------------------------------------------------------
    def _changed(self, *_: Any) -> None:
        self.when_edit.setEnabled(self.later_radio.isChecked())
        self.revalidate()
        if self.wizard() is not None and self.wizard().currentPage() is self:
            self.refresh_summary()

    def revalidate(self) -> None:
        msg = check_start(self.start_at())
        self.errors = {"start": f"Start time {msg}"} if msg else {}
        self.start_error.show_error(self.errors.get("start"))
        self.completeChanged.emit()

    def initializePage(self) -> None:
        self.revalidate()
        self.refresh_summary()
        self.submit_status.show_plain("")

    def refresh_summary(self) -> None:
        spec = self.wizard().build_spec(masked=True)  # type: ignore[attr-defined]
        self.summary.setHtml(summary_html(spec))

    def set_submitting(self, on: bool, text: str = "") -> None:
        self.submitting = on
        self.submit_status.show_plain(text)
        wizard = self.wizard()
        if wizard is not None:
            wizard.button(QWizard.WizardButton.CancelButton).setEnabled(not on)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        # Re-asked at every change; a time that passes while the page is open is caught at Submit.
        return not self.errors and not self.submitting and not self.created


def summary_html(spec: dict[str, Any]) -> str:
    """Every setting of the spec, passwords as given (the caller passes a masked spec)."""

    def endpoint(e: dict[str, Any]) -> str:
        tls = TLS_TEXT.get(e.get("tls") or "off", e.get("tls"))
        ca = f", CA file {e['ca_file']}" if e.get("ca_file") else ""
        return f"{e['user']}@{e['host']}:{e['port']}, password {e['password']}, TLS {tls}{ca}"

    fc = spec.get("flow_control")
    if fc is None:
        flow = "off (no limit)"
    else:
        ranges = ", ".join(f"{w['start']}-{w['end']}" for w in fc.get("windows") or []) or "all day"
        flow = f"{fc['max_mb_s']} MB/s, {ranges}"
    dbs = spec.get("databases")
    relationship = (
        "this side as standby (the DR database is the one you manage)"
        if spec.get("relationship") == "standby"
        else "this side as active (the service database is the one you manage)"
    )
    rows = [
        ("Task name", spec["name"]),
        ("Description", spec.get("description") or "(none)"),
        ("DR relationship", relationship),
        ("DB engines", "MySQL to MySQL (MariaDB accepted as MySQL-family)"),
        ("Network type", "public network" if spec.get("network") == "public" else "VPN or Direct Connect"),
        ("Service database", endpoint(spec["source"])),
        ("DR database", endpoint(spec["target"])),
        ("Destination DB access", "read-only"),
        ("Databases", "all user databases" if dbs is None else ", ".join(dbs)),
        ("Flow control", flow),
        ("Migrate Definer to User", "yes" if spec.get("migrate_definer") else "no"),
        ("Start", "upon task creation" if spec.get("start") == "now" else spec.get("start", "")),
        ("Tags", ", ".join(f"{k}={v}" for k, v in (spec.get("tags") or {}).items()) or "(none)"),
    ]
    body = "".join(
        f"<tr><td style='padding:2px 12px 2px 0'><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"

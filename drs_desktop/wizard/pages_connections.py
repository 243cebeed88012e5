"""Page 2, Service and DR databases: where each server is, a Test Connection per side, the agreement.

Next needs both tests passed for exactly the values now in the fields (editing a field clears that
side's pass) and the agreement ticked. Tests run on TaskManager threads; results name the server
version or the typed ConnectError's message. A running test can be cancelled (its thread cannot be
stopped, so its answer is ignored); a test that passed is remembered (no password) for the next wizard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from drs_desktop.wizard.common import MASK, ErrorLabel, StatusLabel, error_text, guarded, with_error
from engine.spec import Endpoint, Secret, check_host, check_password, check_port, check_user

AGREEMENT = (
    "I understand that the DR database will be read-only while the task runs and that data on it may be "
    "overwritten"
)
TLS_TEXT = {"off": "off", "required": "required (encrypted)", "verify_ca": "verify CA"}
TITLES = {
    "standby": ("Service database (source)", "DR database (this side, standby)"),
    "active": ("Service database (this side, active)", "DR database (remote side, standby)"),
}


class EndpointBox(QGroupBox):
    """Host, port, user, password and Test Connection for one side."""

    def __init__(self, side: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.side = side
        self.tls = "off"
        self.ca_file: str | None = None
        self.passed_key: tuple[Any, ...] | None = None
        self.running_key: tuple[Any, ...] | None = None
        # Which test the next answer must belong to; a cancel moves it on, so a late answer is dropped.
        self.test_serial = 0
        self.on_test: Callable[[EndpointBox], None] = lambda box: None
        self.on_change: Callable[[], None] = lambda: None

        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.host_edit = QLineEdit()
        self.host_edit.setPlaceholderText("IP address or domain name")
        self.host_error = ErrorLabel()
        form.addRow("Host or domain name:", with_error(self.host_edit, self.host_error))
        self.port_spin = QSpinBox()
        # The range lets 0 be typed so the spec's own port rule (1-65535) can say what is wrong.
        self.port_spin.setRange(0, 65535)
        self.port_spin.setValue(3306)
        self.port_error = ErrorLabel()
        form.addRow("Port:", with_error(self.port_spin, self.port_error))
        self.user_edit = QLineEdit()
        self.user_error = ErrorLabel()
        form.addRow("Database user:", with_error(self.user_edit, self.user_error))
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_error = ErrorLabel()
        form.addRow("Password:", with_error(self.password_edit, self.password_error))

        self.tls_text = QLabel()
        self.tls_text.setWordWrap(True)
        self.tls_text.setToolTip("Chosen on the first page (network type and TLS)")
        form.addRow("TLS:", self.tls_text)

        test_row = QHBoxLayout()
        self.test_button = QPushButton("Test Connection")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: "working"
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.result_label = StatusLabel()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.busy)
        test_row.addWidget(self.result_label, 1)
        form.addRow(test_row)

        self.touched: set[str] = {"port"}  # the port always has a value worth judging
        for name, signal in (
            ("host", self.host_edit.textChanged),
            ("port", self.port_spin.valueChanged),
            ("user", self.user_edit.textChanged),
            ("password", self.password_edit.textChanged),
        ):
            signal.connect(lambda *_, n=name: self._changed(n))
        self.test_button.clicked.connect(self._test_clicked)

    # -- values ---------------------------------------------------------------------------------
    def key(self) -> tuple[Any, ...]:
        """Everything a connection test depends on: a pass counts only for these values."""
        return (
            self.host_edit.text().strip(),
            self.port_spin.value(),
            self.user_edit.text(),
            self.password_edit.text(),
            self.tls,
            self.ca_file,
        )

    def endpoint(self) -> Endpoint:
        host, port, user, password, tls, ca_file = self.key()
        return Endpoint(host, port, user, Secret(password), tls, ca_file)

    def spec_part(self, masked: bool = False) -> dict[str, Any]:
        host, port, user, password, tls, ca_file = self.key()
        return {
            "host": host,
            "port": port,
            "user": user,
            "password": MASK if masked else password,
            "tls": tls,
            "ca_file": ca_file,
        }

    def fill(self, data: dict[str, Any]) -> None:
        self.host_edit.setText(str(data.get("host", "")))
        self.port_spin.setValue(int(data.get("port", 3306)))
        self.user_edit.setText(str(data.get("user", "")))
        if data.get("password"):
            self.password_edit.setText(str(data["password"]))

    def field_errors(self) -> dict[str, str]:
        host, port, user, password, _, _ = self.key()
        checks = {
            "host": check_host(host),
            "port": check_port(port),
            "user": check_user(user),
            "password": check_password(password),
        }
        return {k: v for k, v in checks.items() if v}

    def remembered_part(self) -> dict[str, Any]:
        """What the next wizard may pre-fill: everything but the password."""
        host, port, user, _password, tls, ca_file = self.key()
        return {"host": host, "port": port, "user": user, "tls": tls, "ca_file": ca_file}

    @property
    def testing(self) -> bool:
        return self.running_key is not None

    @property
    def passed(self) -> bool:
        return self.passed_key is not None and self.passed_key == self.key()

    # -- behaviour ------------------------------------------------------------------------------
    def set_connection(self, tls: str, ca_file: str | None) -> None:
        self.tls, self.ca_file = tls, ca_file
        self.tls_text.setText(TLS_TEXT.get(tls, tls) + (f", CA file {ca_file}" if ca_file else ""))
        self._changed()

    def _changed(self, field: str | None = None) -> None:
        if field:
            self.touched.add(field)
        if self.passed_key is not None and self.passed_key != self.key():
            self.passed_key = None
            self.result_label.show_plain("Settings changed: test the connection again.")
        self.revalidate()
        self.on_change()

    def revalidate(self) -> None:
        errors = self.field_errors()
        # Fields the user has not reached yet stay quiet; once edited, they say what is wrong.
        for name, label in (
            ("host", self.host_error),
            ("port", self.port_error),
            ("user", self.user_error),
            ("password", self.password_error),
        ):
            label.show_error(errors.get(name) if name in self.touched else None)
        # while a test runs the button is its Cancel, whatever the fields say
        self.test_button.setEnabled(self.testing or not errors)

    def _test_clicked(self) -> None:
        if self.testing:
            self.cancel_test()
        else:
            self.on_test(self)

    def _set_testing(self, on: bool) -> None:
        for field in (self.host_edit, self.port_spin, self.user_edit, self.password_edit):
            field.setEnabled(not on)
        self.busy.setVisible(on)
        self.test_button.setText("Cancel" if on else "Test Connection")
        self.test_button.setToolTip("Stop waiting for this server" if on else "")

    def begin_test(self) -> tuple[int, tuple[Any, ...]]:
        """Marks a test as running; returns the (serial, key) its answer must come back with."""
        self.test_serial += 1
        self.running_key = self.key()
        self.passed_key = None
        self._set_testing(True)
        self.result_label.show_plain("Connecting…")
        self.revalidate()
        return self.test_serial, self.running_key

    def cancel_test(self) -> None:
        """Stop waiting: the fields are editable at once; the test's thread ends by its own timeout
        and its answer is ignored."""
        if not self.testing:
            return
        self.test_serial += 1
        self.running_key = None
        self._set_testing(False)
        self.result_label.show_plain("Test cancelled.")
        self.revalidate()
        self.on_change()

    def finish_test(self, serial: int, key: tuple[Any, ...], ok: bool, text: str) -> bool:
        """Shows a test's answer; False (nothing shown) when that test was cancelled."""
        if serial != self.test_serial:
            return False
        self.running_key = None
        self._set_testing(False)
        if key != self.key():  # the fields changed while the test ran: its answer is about old values
            self.result_label.show_plain("Settings changed: test the connection again.")
        elif ok:
            self.passed_key = key
            self.result_label.show_ok(text)
        else:
            self.result_label.show_failure(text)
        self.revalidate()
        return True


class ConnectionsPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Service and DR databases")
        self.setSubTitle("Where the two servers are. Test each connection before going on.")
        self.source_box = EndpointBox("source")
        self.target_box = EndpointBox("target")
        boxes = QHBoxLayout()
        boxes.addWidget(self.source_box, 1)
        boxes.addWidget(self.target_box, 1)
        self.agreement = QCheckBox(AGREEMENT)
        self.agreement.setStyleSheet("QCheckBox { padding: 2px; }")
        # A long check box text cannot wrap; the page is wide enough for it in two boxes' width.
        layout = QVBoxLayout(self)
        layout.addLayout(boxes)
        layout.addSpacing(8)
        layout.addWidget(self.agreement)
        layout.addStretch(1)
        for box in (self.source_box, self.target_box):
            box.on_test = self.test_connection
            box.on_change = lambda: self.completeChanged.emit()
        self.agreement.toggled.connect(lambda _on: self.completeChanged.emit())
        self.set_relationship("standby")

    def set_relationship(self, relationship: str) -> None:
        source_title, target_title = TITLES.get(relationship, TITLES["standby"])
        self.source_box.setTitle(source_title)
        self.target_box.setTitle(target_title)

    def initializePage(self) -> None:
        wizard = self.wizard()
        task_page = wizard.task_page  # type: ignore[attr-defined]
        self.set_relationship(task_page.relationship)
        for box in (self.source_box, self.target_box):
            box.set_connection(task_page.tls, task_page.ca_file)

    def test_connection(self, box: EndpointBox) -> None:
        if box.field_errors():
            return
        wizard = self.wizard()
        serial, key = box.begin_test()
        endpoint = box.endpoint()
        backend = wizard.backend  # type: ignore[attr-defined]

        def done(info: Any) -> None:
            if box.finish_test(serial, key, True, f"Connection successful: {info.label}"):
                wizard.remember_endpoint(box)  # type: ignore[attr-defined]
            self.completeChanged.emit()

        def failed(exc: BaseException) -> None:
            box.finish_test(serial, key, False, f"Connection failed: {error_text(exc)}")
            self.completeChanged.emit()

        wizard.taskman.run(
            lambda: backend.test_connection(endpoint), guarded(self, done), guarded(self, failed)
        )  # type: ignore[attr-defined]

    def cleanupPage(self) -> None:
        # Back to page 1 (where TLS is chosen): a test still waiting is about to be out of date
        for box in (self.source_box, self.target_box):
            box.cancel_test()

    def isComplete(self) -> bool:
        return (
            self.source_box.passed
            and self.target_box.passed
            and self.agreement.isChecked()
            and not self.source_box.field_errors()
            and not self.target_box.field_errors()
        )

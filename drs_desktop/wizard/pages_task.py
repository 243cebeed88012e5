"""Page 1, Task and DR instance: name, description, DR relationship, engines, network and TLS, tags.

Every message comes from engine.spec (check_name, check_description, check_tags, parse_spec for the
CA file); the page only decides when to ask and where to show the answer.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableView,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from drs_desktop.wizard.common import ErrorLabel, with_error
from drs_desktop.wizard.models import TextRowsModel
from engine.errors import SpecInvalid
from engine.spec import MAX_TAGS, check_description, check_name, check_tags, parse_spec

TLS_CHOICES = (
    ("off", "Off"),
    ("required", "Required (encrypt, no certificate check)"),
    ("verify_ca", "Verify CA"),
)


def ca_file_error(ca_file: str) -> str | None:
    """The spec's own rule for a CA file (exists, given), asked through parse_spec on a probe spec."""
    probe = {
        "name": "probe",
        "source": {"host": "probe.invalid", "user": "probe", "tls": "verify_ca", "ca_file": ca_file},
        "target": {"host": "probe2.invalid", "user": "probe"},
    }
    try:
        parse_spec(probe, need_passwords=False, env={})
    except SpecInvalid as exc:
        for err in exc.errors:
            if err.field == "source.ca_file":
                return err.message
    return None


class TaskPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle("Task and DR instance")
        self.setSubTitle(
            "Name the task, choose which side this DR database is, and how the two servers talk."
        )
        self.name_taken = lambda name: False  # replaced by the wizard with the store's check

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. orders-dr (4-50 characters, letter first)")
        self.name_error = ErrorLabel()
        form.addRow(self._label("Task &name:", self.name_edit), with_error(self.name_edit, self.name_error))

        self.description_edit = QLineEdit()
        self.description_edit.setPlaceholderText("optional, up to 256 characters")
        self.description_error = ErrorLabel()
        form.addRow(
            self._label("&Description:", self.description_edit),
            with_error(self.description_edit, self.description_error),
        )

        self.standby_radio = QRadioButton("This side as &standby (the DR database is the one you manage)")
        self.active_radio = QRadioButton("This side as &active (the service database is the one you manage)")
        self.standby_radio.setChecked(True)
        self.relationship_group = QButtonGroup(self)
        self.relationship_group.addButton(self.standby_radio)
        self.relationship_group.addButton(self.active_radio)
        rel_box = QVBoxLayout()
        rel_box.setSpacing(2)
        rel_box.addWidget(self.standby_radio)
        rel_box.addWidget(self.active_radio)
        form.addRow("DR relationship:", rel_box)

        engines = QHBoxLayout()
        self.source_engine_combo = QComboBox()
        self.source_engine_combo.addItem("MySQL", "mysql")
        self.target_engine_combo = QComboBox()
        self.target_engine_combo.addItem("MySQL", "mysql")
        engines.addWidget(QLabel("Service DB engine:"))
        engines.addWidget(self.source_engine_combo)
        engines.addSpacing(16)
        engines.addWidget(QLabel("DR DB engine:"))
        engines.addWidget(self.target_engine_combo)
        engines.addStretch(1)
        form.addRow("DB engines:", engines)
        engine_note = QLabel("MariaDB is detected and accepted as MySQL-family.")
        engine_note.setStyleSheet("color: palette(mid);")
        form.addRow("", engine_note)

        self.public_radio = QRadioButton("&Public network")
        self.vpn_radio = QRadioButton("&VPN or Direct Connect")
        self.public_radio.setChecked(True)
        self.network_group = QButtonGroup(self)
        self.network_group.addButton(self.public_radio)
        self.network_group.addButton(self.vpn_radio)
        net_box = QHBoxLayout()
        net_box.addWidget(self.public_radio)
        net_box.addWidget(self.vpn_radio)
        net_box.addStretch(1)
        form.addRow("Network type:", net_box)

        self.tls_row = QWidget()
        tls_layout = QHBoxLayout(self.tls_row)
        tls_layout.setContentsMargins(0, 0, 0, 0)
        self.tls_combo = QComboBox()
        for value, text in TLS_CHOICES:
            self.tls_combo.addItem(text, value)
        self.ca_edit = QLineEdit()
        self.ca_edit.setPlaceholderText("CA certificate file (PEM)")
        self.ca_browse = QPushButton("&Browse…")
        tls_layout.addWidget(self.tls_combo)
        tls_layout.addWidget(self.ca_edit, 1)
        tls_layout.addWidget(self.ca_browse)
        self.tls_label = QLabel("&TLS (SSL):")
        self.tls_label.setBuddy(self.tls_combo)
        self.ca_error = ErrorLabel()
        form.addRow(self.tls_label, with_error(self.tls_row, self.ca_error))

        self.access_edit = QLineEdit("Read-only")
        self.access_edit.setEnabled(False)
        self.access_edit.setToolTip("The DR database is kept read-only while the task runs.")
        form.addRow("Destination DB access:", self.access_edit)

        # Tags: a small key/value editor.
        self.tag_model = TextRowsModel(("Key", "Value"), self)
        self.tag_view = QTableView()
        self.tag_view.setModel(self.tag_model)
        self.tag_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.tag_view.verticalHeader().setVisible(False)
        self.tag_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tag_view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.tag_view.verticalHeader().setDefaultSectionSize(self.tag_view.fontMetrics().height() + 8)
        self.tag_view.setMinimumHeight(80)
        self.tag_view.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
        self.add_tag_button = QPushButton("Add ta&g")
        self.remove_tag_button = QPushButton("Remove tag")
        tag_buttons = QVBoxLayout()
        tag_buttons.addWidget(self.add_tag_button)
        tag_buttons.addWidget(self.remove_tag_button)
        tag_buttons.addStretch(1)
        tags_row = QHBoxLayout()
        tags_row.addWidget(self.tag_view, 1)
        tags_row.addLayout(tag_buttons)
        self.tags_error = ErrorLabel()
        form.addRow(f"Tags (up to {MAX_TAGS}):", with_error(tags_row, self.tags_error))

        layout = QVBoxLayout(self)
        layout.addLayout(form)

        self._name_touched = False
        self.name_edit.textChanged.connect(self._name_edited)
        self.description_edit.textChanged.connect(self.revalidate)
        self.tls_combo.currentIndexChanged.connect(self._tls_changed)
        self.ca_edit.textChanged.connect(self.revalidate)
        self.public_radio.toggled.connect(self._network_changed)
        self.ca_browse.clicked.connect(self._browse_ca)
        self.add_tag_button.clicked.connect(self.add_tag)
        self.remove_tag_button.clicked.connect(self.remove_selected_tag)
        self.tag_model.dataChanged.connect(self.revalidate)
        self.tag_model.rowsInserted.connect(self.revalidate)
        self.tag_model.rowsRemoved.connect(self.revalidate)
        self.tag_model.modelReset.connect(self.revalidate)
        self.errors: dict[str, str] = {}
        self._network_changed()

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(buddy)
        return label

    # -- values ---------------------------------------------------------------------------------
    @property
    def relationship(self) -> str:
        return "active" if self.active_radio.isChecked() else "standby"

    @property
    def network(self) -> str:
        return "vpn" if self.vpn_radio.isChecked() else "public"

    @property
    def tls(self) -> str:
        return self.tls_combo.currentData() if self.network == "public" else "off"

    @property
    def ca_file(self) -> str | None:
        return self.ca_edit.text().strip() or None if self.tls == "verify_ca" else None

    def tags(self) -> list[tuple[str, str]]:
        return [(key.strip(), value) for key, value in self.tag_model.values()]

    def spec_part(self) -> dict[str, Any]:
        return {
            "name": self.name_edit.text().strip(),
            "description": self.description_edit.text(),
            "relationship": self.relationship,
            "network": self.network,
            "tags": dict(self.tags()),
        }

    def fill(self, prefill: dict[str, Any]) -> None:
        self.name_edit.setText(str(prefill.get("name", "")))
        self.description_edit.setText(str(prefill.get("description", "") or ""))
        (self.active_radio if prefill.get("relationship") == "active" else self.standby_radio).setChecked(
            True
        )
        (self.vpn_radio if prefill.get("network") == "vpn" else self.public_radio).setChecked(True)
        source = prefill.get("source") or {}
        self.fill_tls(source.get("tls", "off"), source.get("ca_file"))
        tags = prefill.get("tags") or {}
        items = tags.items() if isinstance(tags, dict) else [(t["key"], t["value"]) for t in tags]
        self.tag_model.set_rows([(str(key), str(value)) for key, value in items])
        self.revalidate()

    def fill_tls(self, tls: str, ca_file: str | None) -> None:
        index = self.tls_combo.findData(tls)
        if index >= 0:
            self.tls_combo.setCurrentIndex(index)
        self.ca_edit.setText(ca_file or "")
        self.revalidate()

    # -- behaviour ------------------------------------------------------------------------------
    def _tls_changed(self) -> None:
        verify = self.tls_combo.currentData() == "verify_ca"
        self.ca_edit.setEnabled(verify)
        self.ca_browse.setEnabled(verify)
        self.revalidate()

    def _network_changed(self) -> None:
        public = self.network == "public"
        self.tls_row.setVisible(public)
        self.tls_label.setVisible(public)
        self._tls_changed()

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "CA certificate", "", "Certificates (*.pem *.crt);;All files (*)"
        )
        if path:
            self.ca_edit.setText(path)

    def _name_edited(self) -> None:
        self._name_touched = True
        self.revalidate()

    def add_tag(self) -> None:
        self.tag_model.append_row(("", ""))
        index = self.tag_model.index(self.tag_model.rowCount() - 1, 0)
        self.tag_view.setCurrentIndex(index)
        self.tag_view.setFocus()
        self.tag_view.edit(index)

    def remove_selected_tag(self) -> None:
        rows = sorted({i.row() for i in self.tag_view.selectionModel().selectedIndexes()}, reverse=True)
        if not rows and self.tag_view.currentIndex().isValid():
            rows = [self.tag_view.currentIndex().row()]
        for row in rows:
            self.tag_model.remove_row(row)

    def revalidate(self, *_: Any) -> None:
        errors: dict[str, str] = {}
        name = self.name_edit.text().strip()
        msg = check_name(name)
        if msg is None and self.name_taken(name):
            msg = f"a task named {name!r} already exists; names must be unique"
        if msg:
            errors["name"] = msg
        msg = check_description(self.description_edit.text())
        if msg:
            errors["description"] = msg
        if self.tls == "verify_ca":
            msg = ca_file_error(self.ca_edit.text().strip())
            if msg:
                errors["ca_file"] = msg
        tag_errors = check_tags(self.tags())
        if tag_errors:
            errors["tags"] = "; ".join(
                msg if fld == "tags" else f"tag {fld.removeprefix('tags.')!r}: {msg}"
                for fld, msg in tag_errors
            )
        # An untouched, empty name shows no red text yet; Next stays disabled all the same.
        self.name_error.show_error(errors.get("name") if (name or self._name_touched) else None)
        self.description_error.show_error(errors.get("description"))
        self.ca_error.show_error(errors.get("ca_file"))
        self.tags_error.show_error(errors.get("tags"))
        self.add_tag_button.setEnabled(self.tag_model.rowCount() < MAX_TAGS)
        self.errors = errors
        self.completeChanged.emit()

    def initializePage(self) -> None:
        self.revalidate()

    def isComplete(self) -> bool:
        return not self.errors and bool(self.name_edit.text().strip())

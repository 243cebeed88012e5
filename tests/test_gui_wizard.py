"""The Create Disaster Recovery Task wizard, driven like a DBA would, against the two real servers.

Fields are typed, buttons clicked; the wizard's answers (inline messages, Next enabled or not, the
stored task) are what is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import keyring
import keyring.errors
import pytest
from gui_helpers import open_wizards
from keyring.backend import KeyringBackend
from PySide6.QtCore import QDateTime, QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit, QWizard

from drs_desktop.taskman import TaskManager
from drs_desktop.wizard import CreateTaskWizard
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService
from tests.conftest import make_spec

PAGE_WAIT_MS = 60_000


# ---- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def open_wizard(qtbot, home, memory_keyring):
    """Opens a wizard (optionally prefilled) on a fresh DRS home; closes it and its jobs afterwards."""
    yield from open_wizards(qtbot, home)


def next_button(wiz: QWizard):
    return wiz.button(QWizard.WizardButton.NextButton)


def click_next(qtbot, wiz: QWizard) -> None:
    before = wiz.currentId()
    assert next_button(wiz).isEnabled(), f"Next is disabled on page {before}"
    qtbot.mouseClick(next_button(wiz), Qt.MouseButton.LeftButton)
    assert wiz.currentId() == before + 1


def retype(qtbot, edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def retype_spin(qtbot, spin, text: str) -> None:
    spin.lineEdit().selectAll()
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Delete)
    qtbot.keyClicks(spin.lineEdit(), text)


def edit_cell(qtbot, view: QAbstractItemView, row: int, column: int, text: str) -> None:
    index = view.model().index(row, column)
    view.setCurrentIndex(index)
    if view.indexWidget(index) is None:  # "Add" may have opened the editor already
        view.edit(index)
    editor = view.indexWidget(index)
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.indexWidget(index) is None)  # the delegate commits on a queued call


def tick(qtbot, checkbox) -> None:
    qtbot.mouseClick(checkbox, Qt.MouseButton.LeftButton, pos=QPoint(8, checkbox.height() // 2))


def fill_endpoint(qtbot, box, endpoint) -> None:
    retype(qtbot, box.host_edit, endpoint.host)
    retype_spin(qtbot, box.port_spin, str(endpoint.port))
    retype(qtbot, box.user_edit, endpoint.user)
    retype(qtbot, box.password_edit, endpoint.password.reveal())


def test_connection(qtbot, box) -> str:
    qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: box.running_key is None and box.result_label.text() != "Connecting…", timeout=PAGE_WAIT_MS
    )
    return box.result_label.text()


test_connection.__test__ = False  # a helper, not a test


def to_start_page(qtbot, wiz) -> None:
    """From page 2 (prefilled) to the Start page: connections, databases, checks confirmed, parameters."""
    pass_connections(qtbot, wiz)
    wait_databases(qtbot, wiz)
    click_next(qtbot, wiz)
    wait_checks(qtbot, wiz)
    confirm_all(qtbot, wiz)
    click_next(qtbot, wiz)
    click_next(qtbot, wiz)


def pass_connections(qtbot, wiz) -> None:
    """Page 2 with prefilled fields: both tests pass, agreement ticked, on to page 3."""
    page = wiz.connections_page
    for box in (page.source_box, page.target_box):
        assert "Connection successful: MariaDB 10." in test_connection(qtbot, box)
    tick(qtbot, page.agreement)
    click_next(qtbot, wiz)


def wait_databases(qtbot, wiz) -> None:
    page = wiz.configure_page
    qtbot.waitUntil(lambda: not page.loading, timeout=PAGE_WAIT_MS)


def wait_checks(qtbot, wiz) -> None:
    page = wiz.check_page
    qtbot.waitUntil(lambda: not page.running, timeout=PAGE_WAIT_MS)
    assert page.model.rowCount() > 0, page.status.text()


def confirm_all(qtbot, wiz) -> None:
    """Tick every "needs confirmation" item with the keyboard (Space on the Confirmed cell)."""
    page = wiz.check_page
    for row, result in enumerate(page.model.results):
        if result.result == "confirm":
            page.view.setCurrentIndex(page.model.index(row, 0))
            qtbot.keyClick(page.view, Qt.Key.Key_Space)


def prefilled(dbs, name: str = "shop-dr", **overrides) -> dict:
    return make_spec(dbs, name, **overrides)


# ---- the whole wizard ---------------------------------------------------------------------------
def test_dba_creates_a_task_through_every_page(qtbot, dbs, home, memory_keyring, open_wizard):
    dbs.source.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2))",
        "INSERT INTO shop.orders VALUES (1, 9.50), (2, 12.00)",
        "CREATE DATABASE audit",
        "CREATE TABLE audit.events (happened DATETIME, what VARCHAR(100))",  # no primary key
        "INSERT INTO audit.events VALUES (NOW(), 'login')",
        "CREATE DATABASE scratch",
    )
    wiz = open_wizard()
    assert wiz.windowTitle() == "Create Disaster Recovery Task"
    assert wiz.buttonText(QWizard.WizardButton.FinishButton) == "Submit"

    # Page 1: task and DR instance
    page1 = wiz.task_page
    assert not next_button(wiz).isEnabled()
    qtbot.keyClicks(page1.name_edit, "shop-dr")
    qtbot.keyClicks(page1.description_edit, "Shop orders, DR copy")
    assert page1.standby_radio.isChecked() and page1.public_radio.isChecked()
    assert page1.access_edit.text() == "Read-only" and not page1.access_edit.isEnabled()
    qtbot.mouseClick(page1.add_tag_button, Qt.MouseButton.LeftButton)
    edit_cell(qtbot, page1.tag_view, 0, 0, "team")
    edit_cell(qtbot, page1.tag_view, 0, 1, "dba")
    click_next(qtbot, wiz)

    # Page 2: both servers, Test Connection each, agreement
    page2 = wiz.connections_page
    assert page2.source_box.title() == "Service database (source)"
    assert page2.target_box.title() == "DR database (this side, standby)"
    assert page2.source_box.password_edit.echoMode() == QLineEdit.EchoMode.Password
    fill_endpoint(qtbot, page2.source_box, dbs.source.endpoint)
    fill_endpoint(qtbot, page2.target_box, dbs.target.endpoint)
    assert "Connection successful: MariaDB 10." in test_connection(qtbot, page2.source_box)
    assert not next_button(wiz).isEnabled()  # the DR side is not tested yet
    assert "Connection successful: MariaDB 10." in test_connection(qtbot, page2.target_box)
    assert not next_button(wiz).isEnabled()  # the agreement is not ticked yet
    tick(qtbot, page2.agreement)
    assert next_button(wiz).isEnabled()
    # Editing a field voids that side's pass until it is tested again.
    qtbot.keyClicks(page2.target_box.user_edit, "x")
    assert not next_button(wiz).isEnabled()
    qtbot.keyClick(page2.target_box.user_edit, Qt.Key.Key_Backspace)
    assert "Connection successful" in test_connection(qtbot, page2.target_box)
    click_next(qtbot, wiz)

    # Page 3: databases, flow control, definer
    page3 = wiz.configure_page
    wait_databases(qtbot, wiz)
    assert page3.db_model.names() == ["audit", "scratch", "shop"]
    assert page3.all_check.isChecked()
    scratch = page3.db_model.index(1, 0)
    page3.db_view.setCurrentIndex(scratch)
    qtbot.keyClick(page3.db_view, Qt.Key.Key_Space)  # untick "scratch" with the keyboard
    assert not page3.all_check.isChecked()
    assert page3.databases() == ["audit", "shop"]
    qtbot.mouseClick(page3.flow_on, Qt.MouseButton.LeftButton)
    retype_spin(qtbot, page3.mb_spin, "20")
    qtbot.mouseClick(page3.in_ranges, Qt.MouseButton.LeftButton)
    assert page3.windows_text() == [("00:00", "06:00")]  # one range offered at once
    edit_cell(qtbot, page3.window_view, 0, 0, "01:00")
    qtbot.mouseClick(page3.definer_no, Qt.MouseButton.LeftButton)
    click_next(qtbot, wiz)

    # Page 4: pre-checks; the table without a primary key needs a confirmation
    page4 = wiz.check_page
    wait_checks(qtbot, wiz)
    results = page4.model.results
    failed = [(r.item, r.reason) for r in results if r.result == "failed"]
    assert not failed, failed
    confirm_rows = [i for i, r in enumerate(results) if r.result == "confirm"]
    assert any("events" in results[i].reason for i in confirm_rows), [(r.item, r.reason) for r in results]
    assert not next_button(wiz).isEnabled()
    assert page4.rate_label.text() != "Success rate: 100%"
    for row in confirm_rows:
        page4.view.setCurrentIndex(page4.model.index(row, 0))
        qtbot.keyClick(page4.view, Qt.Key.Key_Space)
    assert page4.rate_label.text() == "Success rate: 100%"
    click_next(qtbot, wiz)

    # Page 5: parameters are compared; differences never block
    page5 = wiz.params_page
    qtbot.waitUntil(lambda: page5.busy_count == 0, timeout=PAGE_WAIT_MS)
    assert page5.model.rowCount() > 0, page5.status.text()
    names = {r.name for r in page5.model.rows}
    assert "max_allowed_packet" in names or "character_set_server" in names
    click_next(qtbot, wiz)

    # Page 6: start, summary, Submit
    page6 = wiz.start_page
    summary = page6.summary.toPlainText()
    for text in (
        "shop-dr",
        "Shop orders, DR copy",
        "audit, shop",
        "20 MB/s, 01:00-06:00",
        "team=dba",
        "********",
    ):
        assert text in summary, text
    assert dbs.source.endpoint.password.reveal() not in summary
    submit = wiz.button(QWizard.WizardButton.FinishButton)
    qtbot.mouseClick(page6.later_radio, Qt.MouseButton.LeftButton)
    page6.when_edit.setDateTime(QDateTime(datetime.now() - timedelta(hours=2)))
    assert not submit.isEnabled()
    assert "must be in the future" in page6.start_error.text()
    qtbot.mouseClick(page6.now_radio, Qt.MouseButton.LeftButton)
    assert submit.isEnabled()
    with qtbot.waitSignal(wiz.taskCreated, timeout=PAGE_WAIT_MS) as created:
        qtbot.mouseClick(submit, Qt.MouseButton.LeftButton)
    assert created.args == ["shop-dr"]

    record = TaskService(home).get("shop-dr")
    spec = record.spec
    assert record.status is Status.STARTING
    assert (spec.description, spec.relationship, spec.network) == (
        "Shop orders, DR copy",
        "standby",
        "public",
    )
    src, tgt = dbs.source.endpoint, dbs.target.endpoint
    assert (spec.source.host, spec.source.port, spec.source.user, spec.source.tls) == (
        src.host,
        src.port,
        src.user,
        "off",
    )
    assert (spec.target.host, spec.target.port, spec.target.user) == (tgt.host, tgt.port, tgt.user)
    assert spec.databases == ("audit", "shop")
    assert spec.flow_control is not None and spec.flow_control.max_mb_s == 20
    assert [str(w) for w in spec.flow_control.windows] == ["01:00-06:00"]
    assert spec.migrate_definer is False
    assert spec.start_at is None
    assert spec.tags == (("team", "dba"),)
    assert memory_keyring.items[("drs-desktop", "shop-dr/source")] == src.password.reveal()
    assert memory_keyring.items[("drs-desktop", "shop-dr/target")] == tgt.password.reveal()
    for path in (home / "drs.sqlite3", home / "drs.sqlite3-wal"):
        if path.exists():
            data = path.read_bytes()
            assert src.password.reveal().encode() not in data and tgt.password.reveal().encode() not in data


def test_scheduled_start_and_active_side_are_stored_as_chosen(qtbot, dbs, home, open_wizard):
    later = (datetime.now() + timedelta(days=1)).replace(hour=2, minute=30, second=0, microsecond=0)
    wiz = open_wizard(
        prefilled(dbs, "night-dr", relationship="active", start=later.isoformat(timespec="minutes"))
    )
    click_next(qtbot, wiz)
    assert wiz.connections_page.source_box.title() == "Service database (this side, active)"
    assert wiz.connections_page.target_box.title() == "DR database (remote side, standby)"
    to_start_page(qtbot, wiz)
    assert wiz.start_page.later_radio.isChecked()
    assert later.strftime("%Y-%m-%dT%H:%M") in wiz.start_page.summary.toPlainText()
    with qtbot.waitSignal(wiz.taskCreated, timeout=PAGE_WAIT_MS):
        qtbot.mouseClick(wiz.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    record = TaskService(home).get("night-dr")
    assert record.status is Status.PENDING_START
    assert record.spec.start_at == later and record.spec.relationship == "active"
    assert record.spec.databases is None  # every user database


# ---- invalid fields block Next with the spec's own message ---------------------------------------
def test_task_page_fields_block_next_with_their_message(qtbot, dbs, home, open_wizard):
    TaskService(home).create(parse_spec(make_spec(dbs, "taken-name")))
    wiz = open_wizard()
    page = wiz.task_page
    cases = [
        ("abc", "4-50 characters"),
        ("1orders", "must start with a letter"),
        ("orders dr", "only letters, digits, - and _"),
        ("taken-name", "already exists"),
    ]
    for name, message in cases:
        retype(qtbot, page.name_edit, name)
        assert message in page.name_error.text(), name
        assert page.name_error.isVisible()
        assert not next_button(wiz).isEnabled(), name
    retype(qtbot, page.name_edit, "orders-dr")
    assert not page.name_error.isVisible() and next_button(wiz).isEnabled()

    qtbot.keyClicks(page.description_edit, "prices <b>")
    assert "must not contain" in page.description_error.text() and "<" in page.description_error.text()
    assert not next_button(wiz).isEnabled()
    retype(qtbot, page.description_edit, "prices")
    assert next_button(wiz).isEnabled()

    page.tls_combo.setCurrentIndex(page.tls_combo.findData("verify_ca"))
    assert "CA file" in page.ca_error.text() and not next_button(wiz).isEnabled()
    qtbot.keyClicks(page.ca_edit, "/nonexistent/ca.pem")
    assert "no such file: /nonexistent/ca.pem" in page.ca_error.text()
    assert not next_button(wiz).isEnabled()
    qtbot.mouseClick(page.vpn_radio, Qt.MouseButton.LeftButton)  # no TLS choice over VPN
    assert not page.tls_row.isVisible() and next_button(wiz).isEnabled()
    qtbot.mouseClick(page.public_radio, Qt.MouseButton.LeftButton)
    page.tls_combo.setCurrentIndex(page.tls_combo.findData("off"))

    for key in ("env", "env"):
        qtbot.mouseClick(page.add_tag_button, Qt.MouseButton.LeftButton)
        edit_cell(qtbot, page.tag_view, page.tag_model.rowCount() - 1, 0, key)
    assert "keys must be unique" in page.tags_error.text()
    assert not next_button(wiz).isEnabled()
    page.tag_view.setCurrentIndex(page.tag_model.index(1, 0))
    qtbot.mouseClick(page.remove_tag_button, Qt.MouseButton.LeftButton)
    assert not page.tags_error.isVisible() and next_button(wiz).isEnabled()


def test_typing_does_not_drain_the_interpreter(qtbot, open_wizard):
    """PySide6 6.12.0's emit() drops a reference to True on each call (pyproject excludes it).

    With such a PySide6, a few thousand keystrokes abort the whole application ("bool_dealloc").
    """
    import gc

    wiz = open_wizard()
    gc.collect()
    before = sys.getrefcount(True)
    for _ in range(100):  # ~1,100 keystrokes, several signals each
        retype(qtbot, wiz.task_page.name_edit, "orders-dr-1")
    gc.collect()
    # A leaking emit() drains thousands; ordinary garbage moves the count by a few dozen.
    assert sys.getrefcount(True) > before - 500


def test_twenty_one_tags_are_refused(qtbot, dbs, open_wizard):
    wiz = open_wizard(prefilled(dbs, tags={f"k{i}": "v" for i in range(21)}))
    assert "at most 20 tags (got 21)" in wiz.task_page.tags_error.text()
    assert not wiz.task_page.add_tag_button.isEnabled()
    assert not next_button(wiz).isEnabled()
    wiz.task_page.tag_view.setCurrentIndex(wiz.task_page.tag_model.index(0, 0))
    qtbot.mouseClick(wiz.task_page.remove_tag_button, Qt.MouseButton.LeftButton)
    assert next_button(wiz).isEnabled()


def test_connection_fields_block_next_with_their_message(qtbot, dbs, open_wizard):
    wiz = open_wizard(prefilled(dbs))
    click_next(qtbot, wiz)
    box = wiz.connections_page.source_box
    retype_spin(qtbot, box.port_spin, "0")
    assert "must be from 1 to 65535 (got 0)" in box.port_error.text()
    assert not box.test_button.isEnabled()
    retype_spin(qtbot, box.port_spin, str(dbs.source.endpoint.port))
    retype(qtbot, box.host_edit, "")
    assert "required: an IP address or domain name" in box.host_error.text()
    assert not box.test_button.isEnabled() and not next_button(wiz).isEnabled()


def test_test_connection_names_access_denied_and_refused(qtbot, dbs, open_wizard):
    wiz = open_wizard(prefilled(dbs))
    click_next(qtbot, wiz)
    box = wiz.connections_page.source_box
    retype(qtbot, box.password_edit, "wrong-password")
    text = test_connection(qtbot, box)
    assert "Connection failed" in text and "access denied for user 'drs'" in text
    assert "wrong-password" not in text
    from tests.conftest import free_port

    retype(qtbot, box.password_edit, dbs.source.endpoint.password.reveal())
    retype_spin(qtbot, box.port_spin, str(free_port()))
    text = test_connection(qtbot, box)
    assert "Connection failed" in text and "refused" in text
    assert not next_button(wiz).isEnabled()


def test_configure_fields_block_next_with_their_message(qtbot, dbs, open_wizard):
    dbs.source.sql("CREATE DATABASE shop")
    wiz = open_wizard(prefilled(dbs))
    click_next(qtbot, wiz)
    pass_connections(qtbot, wiz)
    wait_databases(qtbot, wiz)
    page = wiz.configure_page
    assert next_button(wiz).isEnabled()
    qtbot.mouseClick(page.flow_on, Qt.MouseButton.LeftButton)
    retype_spin(qtbot, page.mb_spin, "10000")
    assert "from 1 to 9999" in page.mb_error.text() and not next_button(wiz).isEnabled()
    retype_spin(qtbot, page.mb_spin, "100")
    assert next_button(wiz).isEnabled()
    qtbot.mouseClick(page.in_ranges, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.add_window_button, Qt.MouseButton.LeftButton)
    edit_cell(qtbot, page.window_view, 1, 0, "05:00")
    edit_cell(qtbot, page.window_view, 1, 1, "07:00")
    assert "ranges 00:00-06:00 and 05:00-07:00 overlap" in page.window_error.text()
    assert not next_button(wiz).isEnabled()
    edit_cell(qtbot, page.window_view, 1, 0, "06:00")
    assert next_button(wiz).isEnabled()
    edit_cell(qtbot, page.window_view, 1, 1, "25:00")
    assert "HH:MM" in page.window_error.text() and not next_button(wiz).isEnabled()
    edit_cell(qtbot, page.window_view, 1, 1, "24:00")
    qtbot.mouseClick(page.add_window_button, Qt.MouseButton.LeftButton)
    assert page.window_model.rowCount() == 3 and not page.add_window_button.isEnabled()
    # no database ticked at all
    page.db_view.setCurrentIndex(page.db_model.index(0, 0))
    qtbot.keyClick(page.db_view, Qt.Key.Key_Space)
    assert "at least one database" in page.db_error.text() and not next_button(wiz).isEnabled()


# ---- parameters ----------------------------------------------------------------------------------
def test_apply_copies_a_differing_parameter_to_the_dr_database(qtbot, dbs, open_wizard):
    (before,) = dbs.target.sql("SELECT @@GLOBAL.max_connections")[0]
    (wanted,) = dbs.source.sql("SELECT @@GLOBAL.max_connections")[0]
    dbs.target.sql(f"SET GLOBAL max_connections = {int(wanted) - 50}")
    try:
        wiz = open_wizard(prefilled(dbs))
        click_next(qtbot, wiz)
        pass_connections(qtbot, wiz)
        wait_databases(qtbot, wiz)
        click_next(qtbot, wiz)
        wait_checks(qtbot, wiz)
        confirm_all(qtbot, wiz)
        click_next(qtbot, wiz)
        page = wiz.params_page
        qtbot.waitUntil(lambda: page.busy_count == 0, timeout=PAGE_WAIT_MS)
        row = page.model.row_of("max_connections")
        assert row >= 0 and not page.model.rows[row].consistent
        assert next_button(wiz).isEnabled()  # differences never block
        assert not page.apply_button.isEnabled()  # nothing ticked yet
        page.view.setCurrentIndex(page.proxy.mapFromSource(page.model.index(row, 0)))
        qtbot.keyClick(page.view, Qt.Key.Key_Space)
        qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: page.busy_count == 0 and page.results_text.toPlainText() != "", timeout=PAGE_WAIT_MS
        )
        qtbot.waitUntil(lambda: page.busy_count == 0, timeout=PAGE_WAIT_MS)  # re-read after applying
        assert f"max_connections: applied ({wanted})" in page.results_text.toPlainText()
        assert page.model.rows[page.model.row_of("max_connections")].consistent
        assert dbs.target.sql("SELECT @@GLOBAL.max_connections")[0][0] == wanted
    finally:
        dbs.target.sql(f"SET GLOBAL max_connections = {int(before)}")


# ---- pre-checks ---------------------------------------------------------------------------------
def test_failing_precheck_blocks_the_task(qtbot, dbs, open_wizard):
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    wiz = open_wizard(prefilled(dbs))
    click_next(qtbot, wiz)
    pass_connections(qtbot, wiz)
    wait_databases(qtbot, wiz)
    dbs.source.sql("SET GLOBAL binlog_format = 'STATEMENT'")
    try:
        click_next(qtbot, wiz)
        wait_checks(qtbot, wiz)
        page = wiz.check_page
        failed = [r for r in page.model.results if r.result == "failed"]
        assert any("binlog_format" in r.reason for r in failed), [
            (r.item, r.reason) for r in page.model.results
        ]
        row = page.model.results.index(next(r for r in failed if "binlog_format" in r.reason))
        assert page.model.data(page.model.index(row, 2)) == "Failed"
        # what blocks comes first, selected and in view; then confirmations, then the passed items
        order = {"failed": 0, "confirm": 1, "passed": 2}
        ranks = [order[r.result] for r in page.model.results]
        assert ranks == sorted(ranks) and ranks[0] == 0
        assert page.view.selectionModel().isRowSelected(0)
        confirms = sum(1 for r in page.model.results if r.result == "confirm")
        passed = len(ranks) - len(failed) - confirms
        assert page.counts_label.text() == (
            f"{len(failed)} failed, {confirms} warning{'' if confirms == 1 else 's'}, {passed} passed"
        )
        assert page.rate_label.text() != "Success rate: 100%"
        confirm_all(qtbot, wiz)  # confirming the rest does not help
        assert not next_button(wiz).isEnabled()
        assert "failed" in page.status.text()
    finally:
        dbs.source.sql("SET GLOBAL binlog_format = 'ROW'")
    # Fixed on the server: Check Again lets the task go on.
    qtbot.mouseClick(wiz.check_page.again_button, Qt.MouseButton.LeftButton)
    wait_checks(qtbot, wiz)
    assert not [r for r in wiz.check_page.model.results if r.result == "failed"]


def test_result_models_pass_qtmodeltester(qtmodeltester):
    from drs_desktop.wizard.pages_check import PrecheckModel
    from drs_desktop.wizard.pages_params import ParamModel
    from engine.params import ParamComparison as Param
    from engine.precheck import PrecheckResult as Check

    checks = PrecheckModel()
    checks.set_results(
        [
            Check("Binary log format", "passed", "ROW", ""),
            Check("Tables without a primary key", "confirm", "shop.t has none", "add one"),
            Check("server_id differs", "failed", "both 1", "set server_id"),
        ]
    )
    qtmodeltester.check(checks)
    assert checks.success_rate() == 33
    params = ParamModel()
    params.set_rows(
        [
            Param("max_allowed_packet", "common", "67108864", "16777216", False, False),
            Param("innodb_log_file_size", "performance", "268435456", None, False, True),
        ]
    )
    qtmodeltester.check(params)
    from drs_desktop.wizard.models import DatabaseListModel, TextRowsModel

    tags = TextRowsModel(("Key", "Value"))
    tags.set_rows([("team", "dba"), ("env", "prod")])
    qtmodeltester.check(tags)
    databases = DatabaseListModel()
    databases.set_databases([("crm", 1024), ("shop", 0)], None)
    qtmodeltester.check(databases)
    assert databases.checked_names() == ["crm", "shop"]


# ---- creation failure ---------------------------------------------------------------------------
class BrokenKeyring(KeyringBackend):
    """A keyring that refuses to store anything, as a locked OS keyring does."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("keyring is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError(username)


def test_creation_failure_is_kept_with_its_reason(qtbot, dbs, home: Path, open_wizard):
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        wiz = open_wizard(prefilled(dbs, "locked-dr"))
        click_next(qtbot, wiz)
        to_start_page(qtbot, wiz)
        with qtbot.waitSignal(wiz.creationFailed, timeout=PAGE_WAIT_MS) as failed:
            qtbot.mouseClick(wiz.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    finally:
        keyring.set_keyring(previous)
    name, reason = failed.args
    assert name == "locked-dr" and "cannot store the source password" in reason
    record = TaskService(home).get("locked-dr")
    assert record.status is Status.CREATION_FAILED
    assert record.last_error == reason
    assert reason in wiz.start_page.submit_status.text()
    assert wiz.isVisible()  # the user reads the reason before closing


# ---- closing -------------------------------------------------------------------------------------
def test_closing_the_wizard_while_a_test_runs_is_harmless(qtbot, dbs, home, memory_keyring):
    """The main window deletes the wizard on close; a late job result must not touch dead widgets."""
    service = TaskService(home)
    taskman = TaskManager()
    wiz = CreateTaskWizard(service, taskman, prefill=prefilled(dbs))
    wiz.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wiz.show()
    qtbot.waitExposed(wiz)
    click_next(qtbot, wiz)
    qtbot.mouseClick(wiz.connections_page.source_box.test_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(wiz.destroyed):
        wiz.close()
    assert taskman.wait_idle()
    QApplication.processEvents()  # delivers the job's queued result: it must be dropped quietly
    service.close()


# ---- screenshots ------------------------------------------------------------------------------
def test_screenshot_script_renders_every_page_from_real_servers(dbs, tmp_path):
    """The script in its real-server mode (its own process: it has its own QApplication)."""

    src, tgt = dbs.source.endpoint, dbs.target.endpoint
    script = Path(__file__).resolve().parent.parent / "scripts" / "wizard_screenshots.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--source",
            f"{src.host}:{src.port}:{src.user}:{src.password.reveal()}",
            "--target",
            f"{tgt.host}:{tgt.port}:{tgt.user}:{tgt.password.reveal()}",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    pngs = sorted(p.name for p in tmp_path.glob("wizard-*.png"))
    assert pngs == [
        "wizard-1-task.png",
        "wizard-2-connections.png",
        "wizard-3-configure.png",
        "wizard-4-check.png",
        "wizard-5-params.png",
        "wizard-6-start.png",
    ]
    assert src.password.reveal() not in result.stdout + result.stderr

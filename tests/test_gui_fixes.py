"""What a DBA found by trying the GUI, fixed: pre-check results with what blocks first, a step list
beside the wizard, a Test Connection that can be cancelled and gives up within seconds, the last
connection fields remembered (never a password), a delete dialog that defaults to Cancel and offers to
lift read-only only where the task set it, the real delay of a paused task, initial-copy numbers that
add up, and Modify Connection Details for host, port, user, password and TLS.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QDialog, QWizard

from drs_desktop.details import TaskDetailsDialog
from drs_desktop.dialogs import DR_READ_ONLY_STATUSES, DeleteTaskDialog
from drs_desktop.settings import SETTINGS_FILE, gui_settings
from drs_desktop.wizard import WizardBackend
from drs_desktop.wizard.last_used import recall_connection, remember_connection
from drs_desktop.wizard.pages_check import PrecheckModel, counts_text
from engine.connect import ServerInfo, binlog_position, connect
from engine.precheck import PrecheckResult
from engine.spec import parse_spec
from engine.status import Status
from engine.store import TaskRow
from tests.conftest import make_spec
from tests.gui_helpers import open_windows, open_wizards
from tests.test_cli import spec_dict
from tests.test_gui_wizard import click_next, fill_endpoint, next_button, test_connection, tick

WAIT_MS = 30_000


# ---- a wizard over canned server answers (no servers needed) ------------------------------------
def canned_results() -> list[PrecheckResult]:
    """23 items in the engine's order, a failed one near the end, confirmations in between."""
    results = [PrecheckResult(f"Item {i:02d}", "passed", "fine", "") for i in range(23)]
    results[5] = PrecheckResult("Item 05", "confirm", "shop.t has no primary key", "add one")
    results[12] = PrecheckResult("Item 12", "confirm", "definer missing", "create it")
    results[20] = PrecheckResult("Item 20", "failed", "binlog_format is STATEMENT", "set it to ROW")
    results[22] = PrecheckResult("Item 22", "failed", "server_id equal", "change one")
    return results


class CannedBackend(WizardBackend):
    def test_connection(self, endpoint):
        return ServerInfo("10.11.6-MariaDB", "mariadb", (10, 11), 1, "db", endpoint.port, None)

    def database_sizes(self, endpoint):
        return [("shop", 4096)]

    def run_prechecks(self, spec, on_progress, stop):
        return canned_results()

    def compare_params(self, spec):
        return []

    def apply_params(self, spec, names):
        return []


@pytest.fixture
def wizards(qtbot, home, memory_keyring):
    """Opens wizards on one DRS home (prefill=None: a new wizard as the toolbar opens it)."""
    yield from open_wizards(qtbot, home)


def to_check_page(qtbot, wiz) -> None:
    click_next(qtbot, wiz)
    page = wiz.connections_page
    for box in (page.source_box, page.target_box):
        assert "Connection successful" in test_connection(qtbot, box)
    tick(qtbot, page.agreement)
    click_next(qtbot, wiz)
    qtbot.waitUntil(lambda: not wiz.configure_page.loading, timeout=WAIT_MS)
    click_next(qtbot, wiz)
    qtbot.waitUntil(
        lambda: not wiz.check_page.running and wiz.check_page.model.rowCount() > 0, timeout=WAIT_MS
    )


# ---- 1. pre-checks: what blocks first ----------------------------------------------------------
def test_precheck_model_lists_failed_then_warnings_then_passed_in_the_engines_order(qtmodeltester):
    model = PrecheckModel()
    model.set_results(canned_results())
    qtmodeltester.check(model)
    items = [r.item for r in model.results]
    assert items[:4] == ["Item 20", "Item 22", "Item 05", "Item 12"]
    assert items[4:] == [f"Item {i:02d}" for i in range(23) if i not in (5, 12, 20, 22)]
    assert model.data(model.index(0, 2)) == "Failed"
    assert counts_text(model.results) == "2 failed, 2 warnings, 19 passed"
    assert counts_text(model.results[2:3]) == "0 failed, 1 warning, 0 passed"


def test_check_page_selects_and_shows_the_first_failed_item_and_counts_them(qtbot, wizards):
    wiz = wizards(spec_dict("shop-dr"), CannedBackend())
    page = wiz.check_page
    page.view.setFixedHeight(160)  # fewer rows than results fit: the table must scroll to the failure
    to_check_page(qtbot, wiz)
    first = page.model.index(0, 1)
    assert first.data() == "Item 20"
    assert page.view.selectionModel().isRowSelected(0)
    assert page.view.currentIndex().row() == 0
    assert page.view.viewport().rect().intersects(page.view.visualRect(first))
    assert page.counts_label.text() == "2 failed, 2 warnings, 19 passed"
    assert not next_button(wiz).isEnabled()


# ---- 2. the step list --------------------------------------------------------------------------
def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#202124"),
        (QPalette.ColorRole.WindowText, "#e8eaed"),
        (QPalette.ColorRole.Base, "#171717"),
        (QPalette.ColorRole.Text, "#e8eaed"),
        (QPalette.ColorRole.Button, "#303134"),
        (QPalette.ColorRole.ButtonText, "#e8eaed"),
        (QPalette.ColorRole.PlaceholderText, "#9aa0a6"),
    ):
        palette.setColor(role, QColor(colour))
    return palette


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 = none, 21 = black on white)."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_step_list_marks_the_current_step_and_reads_in_a_dark_palette(qtbot, wizards):
    wiz = wizards(spec_dict("shop-dr"), CannedBackend())
    steps = wiz.steps
    assert wiz.sideWidget() is steps and steps.isVisible()
    assert steps.heading.text() == "Step 1 of 6 \u00b7 Task and DR instance"
    click_next(qtbot, wiz)
    assert steps.heading.text() == "Step 2 of 6 \u00b7 Service and DR databases"
    texts = [label.text() for label in steps.labels]
    assert texts[0].startswith("\u2713 1.") and texts[1].startswith("\u25b8 2. Service and DR databases")
    assert [label.font().bold() for label in steps.labels] == [False, True, False, False, False, False]
    # no colour of its own: palette roles only, so a dark theme's colours are the ones drawn
    assert all(w.styleSheet() == "" for w in (steps, steps.heading, *steps.labels))
    wiz.setPalette(dark_palette())
    for label in (steps.heading, *steps.labels):
        palette = label.palette()
        assert contrast(palette.color(label.foregroundRole()), palette.color(QPalette.ColorRole.Window)) > 4.5
    qtbot.mouseClick(wiz.button(QWizard.WizardButton.BackButton), Qt.MouseButton.LeftButton)
    assert steps.heading.text() == "Step 1 of 6 \u00b7 Task and DR instance"


# ---- 3. Test Connection: cancellable, and a silent server answers within seconds ---------------------
@pytest.fixture
def blackhole():
    """A TCP port that takes connections (the kernel completes the handshake) and never says a word,
    as a firewall that swallows the server's answer, or a host that froze."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield listener.getsockname()[1]
    listener.close()


def test_test_connection_can_be_cancelled_and_a_silent_server_times_out(qtbot, wizards, blackhole):
    spec = spec_dict("shop-dr")
    spec["source"] = {**spec["source"], "host": "127.0.0.1", "port": blackhole}
    wiz = wizards(spec)  # the real backend: engine.connect against the silent port
    click_next(qtbot, wiz)
    box = wiz.connections_page.source_box
    qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
    assert box.test_button.text() == "Cancel" and box.test_button.isEnabled()
    assert not box.host_edit.isEnabled() and box.result_label.text() == "Connecting…"

    qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)  # Cancel: back at once
    assert box.test_button.text() == "Test Connection" and box.test_button.isEnabled()
    assert box.host_edit.isEnabled() and box.port_spin.isEnabled() and box.password_edit.isEnabled()
    assert box.result_label.text() == "Test cancelled." and not box.busy.isVisible()

    # test again at once: the abandoned attempt still waits on its thread; its answer must be dropped
    shown: list[bool] = []
    finish = box.finish_test
    box.finish_test = lambda *args: shown.append(finish(*args)) or shown[-1]
    started = time.monotonic()
    text = test_connection(qtbot, box)
    seconds = time.monotonic() - started
    print(f"silent server: Test Connection answered after {seconds:.1f} s: {text}")
    assert "Connection failed" in text and "timed out after 5s" in text, text
    assert box.test_button.text() == "Test Connection" and box.host_edit.isEnabled()
    assert wiz.taskman.wait_idle(15_000)
    qtbot.waitUntil(lambda: len(shown) == 2)
    assert sorted(shown) == [False, True]  # one answer shown, the cancelled one ignored


# ---- 4. the last connection fields, remembered without the password -------------------------------
def test_remembered_fields_round_trip_without_the_password(home, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = gui_settings(home)
    fields = {
        "host": "db1.example.com",
        "port": 3307,
        "user": "drs",
        "password": "S3cret-pw",
        "tls": "verify_ca",
    }
    remember_connection(settings, "source", {**fields, "ca_file": str(ca)})
    again = recall_connection(gui_settings(home), "source")
    assert again == {
        "host": "db1.example.com",
        "port": 3307,
        "user": "drs",
        "tls": "verify_ca",
        "ca_file": str(ca),
    }
    assert recall_connection(gui_settings(home), "target") == {}
    ini = (home / SETTINGS_FILE).read_text()
    assert "S3cret-pw" not in ini and "password" not in ini.lower()


def test_a_new_wizard_starts_from_the_last_fields_that_passed(qtbot, dbs, home, wizards, tmp_path):
    first = wizards()
    assert first.connections_page.source_box.host_edit.text() == ""  # nothing remembered yet
    qtbot.keyClicks(first.task_page.name_edit, "shop-dr")
    click_next(qtbot, first)
    page = first.connections_page
    fill_endpoint(qtbot, page.source_box, dbs.source.endpoint)
    fill_endpoint(qtbot, page.target_box, dbs.target.endpoint)
    for box in (page.source_box, page.target_box):
        assert "Connection successful" in test_connection(qtbot, box)
    first.reject()

    ini = (home / SETTINGS_FILE).read_text()
    for password in (dbs.source.endpoint.password.reveal(), dbs.target.endpoint.password.reveal()):
        assert password not in ini
    assert "password" not in ini.lower()

    second = wizards()
    for box, endpoint in (
        (second.connections_page.source_box, dbs.source.endpoint),
        (second.connections_page.target_box, dbs.target.endpoint),
    ):
        assert (box.host_edit.text(), box.port_spin.value(), box.user_edit.text()) == (
            endpoint.host,
            endpoint.port,
            endpoint.user,
        )
        assert box.password_edit.text() == ""  # typed again each time
    assert second.task_page.tls == "off"

    # an explicit prefill (e.g. Create reverse task) wins over what was remembered
    third = wizards(spec_dict("back-dr"))
    assert third.connections_page.source_box.host_edit.text() == "db1.example.invalid"

    # TLS is remembered with the fields (one choice on page 1 for both sides)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    remember_connection(
        gui_settings(home),
        "source",
        {"host": "db1", "port": 3306, "user": "drs", "tls": "verify_ca", "ca_file": str(ca)},
    )
    fourth = wizards()
    assert fourth.task_page.tls == "verify_ca" and fourth.task_page.ca_edit.text() == str(ca)


# ---- 5. delete: Cancel is the default; lifting read-only only where it applies ------------------
def test_delete_offers_lifting_read_only_only_where_the_task_set_it(qtbot):
    offered = set()
    for status in Status:
        dialog = DeleteTaskDialog("orders-dr", status=status)
        qtbot.addWidget(dialog)
        if dialog.lift_read_only_box is not None:
            offered.add(status)
    assert offered == {Status.STARTING, Status.INITIALIZING, Status.REPLICATING, Status.PAUSED, Status.FAILED}
    assert offered == set(DR_READ_ONLY_STATUSES)
    dialog = DeleteTaskDialog("hr-dr", status=Status.CONFIGURATION)
    qtbot.addWidget(dialog)
    assert dialog.lift_read_only_box is None and not dialog.lift_read_only
    paused = DeleteTaskDialog("crm-dr", status=Status.PAUSED)
    qtbot.addWidget(paused)
    assert paused.lift_read_only_box.text() == "Also make the DR database writable (lift read-only)"
    assert not paused.lift_read_only  # never ticked for the DBA


@pytest.mark.parametrize("focus", ["dialog", "checkbox"])
def test_enter_in_the_delete_dialog_cancels(qtbot, focus):
    dialog = DeleteTaskDialog("crm-dr", status=Status.PAUSED)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    target = dialog.lift_read_only_box if focus == "checkbox" else dialog
    if focus == "checkbox":
        target.setFocus()
    with qtbot.waitSignal(dialog.finished) as finished:
        qtbot.keyClick(target, Qt.Key.Key_Return)
    assert finished.args == [QDialog.DialogCode.Rejected.value]


@pytest.fixture
def windows(qtbot, service):
    yield from open_windows(qtbot, service)


def test_delete_from_the_window_asks_with_the_tasks_status(qtbot, service, windows):
    for name, status in (("hr-dr", Status.CONFIGURATION), ("crm-dr", Status.PAUSED)):
        service.create(parse_spec(spec_dict(name)), status=Status.CONFIGURATION)
        service.store.set_status(name, status)
    window = windows(autostart=False)
    for name, offered in (("hr-dr", False), ("crm-dr", True)):
        assert window.select_task(name)
        window.delete_task()
        dialog = next(d for d in window.findChildren(DeleteTaskDialog) if d.isVisible())
        assert (dialog.lift_read_only_box is not None) is offered
        qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter: nothing deleted
        qtbot.waitUntil(lambda d=dialog: not d.isVisible())
        assert service.store.name_taken(name)


# ---- 6. a paused task's real delay -----------------------------------------------------------------
def set_times(store, name: str, **values) -> None:
    from sqlalchemy import update

    with store.session_scope() as s:
        s.execute(update(TaskRow).where(TaskRow.name == name).values(**values))


def test_details_show_the_delay_of_a_paused_task_growing_since_it_was_paused(qtbot, service):
    service.create(parse_spec(spec_dict("crm-dr")), status=Status.CONFIGURATION)
    service.store.set_status("crm-dr", Status.PAUSED, phase="incremental", delay_seconds=0.0)
    paused_at = datetime.now() - timedelta(minutes=3)
    set_times(service.store, "crm-dr", status_changed_at=paused_at, runner_heartbeat=paused_at)
    dialog = TaskDetailsDialog(service.get("crm-dr"))
    qtbot.addWidget(dialog)
    shown = dialog.values["Delay"].text()
    assert shown.startswith("3 min"), shown  # caught up when paused, 3 minutes behind now


# ---- 7. the initial copy's numbers add up ----------------------------------------------------------
COPIED = re.compile(r"^(\d+\.\d) % of the data by size \(([\d,]+) of (?:about )?([\d,]+) rows copied\)")


def shown_copy(dialog: TaskDetailsDialog) -> tuple[float, int, int, list[int], list[int]]:
    """What the Initial copy tab shows: summary %, copied, estimated; per-table copied and estimated."""
    match = COPIED.match(dialog.copy_summary.text())
    assert match, dialog.copy_summary.text()
    model = dialog.copy_model
    per_done = [int(model.index(r, 2).data().replace(",", "")) for r in range(model.rowCount())]
    per_est = [int(model.index(r, 3).data().replace(",", "")) for r in range(model.rowCount())]
    percent, done, est = float(match[1]), int(match[2].replace(",", "")), int(match[3].replace(",", ""))
    # the Basic information tab says the same
    assert dialog.values["Progress"].text().startswith(match[0]), dialog.values["Progress"].text()
    return percent, done, est, per_done, per_est


def test_initial_copy_summary_and_tables_add_up_while_copying_and_end_at_100(qtbot, dbs, service):
    dbs.source.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.photos (id INT PRIMARY KEY, jpeg LONGBLOB)",  # few rows, most of the bytes
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT)",  # many rows, few bytes
        "CREATE TABLE shop.empty_one (id INT PRIMARY KEY)",
    )
    dbs.source.sql("INSERT INTO photos SELECT seq, REPEAT('x', 20000) FROM seq_1_to_240", database="shop")  # 4.8 MB
    dbs.source.sql("INSERT INTO orders SELECT seq, seq FROM seq_1_to_30000", database="shop")
    spec = make_spec(dbs, "shop-dr", databases=["shop"], flow_control={"max_mb_s": 2})  # ~3 s of copying
    service.create(parse_spec(spec))
    src = connect(dbs.source.endpoint)
    until = binlog_position(src)
    src.close()
    dialog = TaskDetailsDialog(service.get("shop-dr"))
    qtbot.addWidget(dialog)

    from engine.runner import TaskRunner

    runner = TaskRunner(service, "shop-dr")
    outcome: list[Status] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(until=until)), daemon=True)
    thread.start()
    mid_copy = 0
    while thread.is_alive():  # what the window's refresh hands the dialog, as often as it could
        record = service.get("shop-dr")
        dialog.set_record(record)
        if record.extra.get("copy"):
            percent, done, est, per_done, per_est = shown_copy(dialog)
            assert done == sum(per_done) and est == sum(per_est)
            if 0 < done < est:
                mid_copy += 1
                # the size-based % never claims the data copied while a table still has rows to go
                assert percent < 99, (dialog.copy_summary.text(), per_done, per_est)
        qtbot.wait(100)
    thread.join()
    assert outcome == [Status.REPLICATING]
    assert mid_copy >= 2  # the numbers were checked while the copy was under way

    dialog.set_record(service.get("shop-dr"))
    percent, done, est, per_done, per_est = shown_copy(dialog)
    assert (percent, done, est) == (100.0, 30240, 30240)
    assert per_done == per_est and sum(per_done) == 30240
    model = dialog.copy_model
    assert {model.index(r, 4).data() for r in range(model.rowCount())} == {"Done"}
    assert {model.index(r, 5).data() for r in range(model.rowCount())} == {"100.0 %"}
    assert "rows copied" in dialog.copy_summary.text() and "about" not in dialog.copy_summary.text()


# ---- 8. Modify Connection Details --------------------------------------------------------------
def test_modify_connection_changes_user_password_and_tls_and_shows_refusals_by_the_field(
    qtbot, dbs, service, windows, memory_keyring
):
    from drs_desktop.dialogs import ConnectionDialog

    service.create(parse_spec(make_spec(dbs, "shop-dr")), status=Status.CONFIGURATION)
    service.store.set_status("shop-dr", Status.FAILED, last_error="access denied for user 'drs'")
    dbs.source.sql(
        "CREATE USER 'drs_t_new'@'%' IDENTIFIED BY 'New-pw-77'",
        "GRANT ALL PRIVILEGES ON *.* TO 'drs_t_new'@'%'",
    )
    window = windows(autostart=False)
    assert window.select_task("shop-dr")
    window.modify_connection()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(ConnectionDialog)))
    dialog = next(d for d in window.findChildren(ConnectionDialog) if d.isVisible())
    source, target = dialog.boxes["source"], dialog.boxes["target"]
    src, tgt = dbs.source.endpoint, dbs.target.endpoint
    assert (source.host_edit.text(), source.port_spin.value(), source.user_edit.text()) == (
        src.host,
        src.port,
        src.user,
    )
    assert source.tls == "off" and source.password_edit.text() == ""
    assert not dialog.save_button.isEnabled()  # nothing changed yet

    # the spec's own rules, under the field, before anything is sent
    source.port_spin.setValue(0)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert (
        "must be from 1 to 65535 (got 0)" in source.errors["port"].text()
        and source.errors["port"].isVisible()
    )
    assert dialog.isVisible()
    # the engine's refusal, under the field it names: the service side cannot become the DR server
    source.port_spin.setValue(tgt.port)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: source.errors["host"].isVisible(), timeout=WAIT_MS)
    assert "different server" in source.errors["host"].text()
    assert not source.errors["port"].isVisible() and dialog.isVisible()
    assert service.get("shop-dr").spec.source.port == src.port  # nothing stored

    # a CA file that does not exist, for verify CA
    source.port_spin.setValue(src.port)
    target.tls_combo.setCurrentIndex(target.tls_combo.findData("verify_ca"))
    target.ca_edit.setText("/nonexistent/ca.pem")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "no such file: /nonexistent/ca.pem" in target.errors["ca_file"].text()

    # another account on the service side, and TLS required towards the DR side
    target.tls_combo.setCurrentIndex(target.tls_combo.findData("required"))
    source.user_edit.setText("drs_t_new")
    qtbot.keyClicks(source.password_edit, "New-pw-77")
    with qtbot.waitSignal(window.actionDone, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert done.args == ["modify_connection", "shop-dr"]
    qtbot.waitUntil(lambda: not dialog.isVisible())
    spec = service.get("shop-dr").spec
    assert (spec.source.user, spec.source.port, spec.target.tls) == ("drs_t_new", src.port, "required")
    assert service.secrets.get_password("shop-dr", "source").reveal() == "New-pw-77"
    assert service.secrets.get_password("shop-dr", "target").reveal() == tgt.password.reveal()
    messages = [e.message for e in service.store.logs("shop-dr")]
    assert any("source connection details modified" in m for m in messages)
    assert not any("New-pw-77" in m for m in messages)

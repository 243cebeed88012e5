"""Where a DBA looks for a leaked password, with a task that really replicates between the two servers:
the task store (SQLite file and its -wal/-shm), the DR log, every export, process arguments and
environments (`drs run` and the GUI with its worker threads), error texts, and what the windows show.
And the DR side during DR: an ordinary account cannot write there.

Already covered elsewhere and not repeated here: passwords only in the secret store and never in repr/
logs for a task that never ran (test_secrets.py), the wizard's password echo mode, masked summary and
failed test-connection text (test_gui_wizard.py), the details dialog and Modify Connection dialog
(test_gui_main_window.py), verify CA refusing a wrong CA (test_tls.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from conftest import ServerPair, make_spec
from dr_helpers import wait_for
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QStatusBar,
    QTabWidget,
    QTextEdit,
    QWidget,
    QWizard,
)

from drs_desktop.main_window import MainWindow
from drs_desktop.taskman import TaskManager
from drs_desktop.wizard import CreateTaskWizard
from engine.connect import connect
from engine.errors import AccessDenied
from engine.spec import Endpoint, Secret
from engine.status import Status
from engine.tasks import TaskService

# Known passwords a DBA would grep for (plain characters: an HTML export could not hide them by escaping).
SOURCE_PW = "Src-Sec-Pw-4b1d9e0c"
DR_PW = "Dr-Sec-Pw-77c0aa31"
WRONG_PW = "Wrong-Sec-Pw-5e2f19"
PASSWORDS = (SOURCE_PW, DR_PW)
TASK = "sec-dr"


@dataclass
class Replicating:
    servers: ServerPair
    home: Path
    env: dict[str, str]
    run: subprocess.Popen
    exports: Path

    def drs(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "engine.cli", "--home", str(self.home), *args],
            capture_output=True, text=True, env=self.env, timeout=300,
        )  # fmt: skip
        assert result.returncode in ok and "Traceback" not in result.stderr, result.stderr
        return result

    def service(self) -> TaskService:
        return TaskService(self.home)


def create_account(server, user: str, password: str, grants: str = "ALL PRIVILEGES ON *.*") -> Endpoint:
    conn = server.root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT {grants} TO '{user}'@'%'")
    conn.close()
    return Endpoint("127.0.0.1", server.port, user, Secret(password))


def spec_with(servers: ServerPair, name: str, source: Endpoint, target: Endpoint, **overrides) -> dict:
    spec = make_spec(servers, name, **overrides)
    for side, ep in (("source", source), ("target", target)):
        spec[side].update(host=ep.host, port=ep.port, user=ep.user, password=ep.password.reveal())
    return spec


def assert_no_password(where: str, text: str | bytes, passwords=PASSWORDS) -> None:
    for pw in passwords:
        needle = pw.encode() if isinstance(text, bytes) else pw
        assert needle not in text, f"a password is in {where}"


@pytest.fixture(scope="module")
def replicating(servers: ServerPair, tmp_path_factory) -> Iterator[Replicating]:
    """Task sec-dr replicating shop between the servers under `drs run`, with accounts whose passwords
    are known; a compare (with one difference) and the DR log exported in every format."""
    for server in (servers.source, servers.target):
        if not server.external and server.proc is None:
            server.start(servers.base)
    servers.reset()
    base = tmp_path_factory.mktemp("security")
    home, exports = base / "home", base / "exports"
    exports.mkdir()
    env = {**os.environ, "DRS_SECRET_BACKEND": "file", "DRS_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    patch = pytest.MonkeyPatch()  # this process reads the same encrypted secrets file as `drs run`
    patch.setenv("DRS_SECRET_BACKEND", "file")
    source = create_account(servers.source, "drs_t_sec", SOURCE_PW)
    target = create_account(servers.target, "drs_t_sec", DR_PW)
    servers.source.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100))",
        "INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second'), (3, 'third')",
    )
    spec_file = base / "spec.json"
    spec_file.write_text(json.dumps(spec_with(servers, TASK, source, target, databases=["shop"])))
    proc = None
    try:
        ctx = Replicating(servers, home, env, None, exports)  # type: ignore[arg-type]
        ctx.drs("task", "create", "--spec", str(spec_file))
        spec_file.unlink()  # the one place the passwords were given in; not part of what is searched
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "--home", str(home), "run", TASK, "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        ctx.run = proc
        svc = ctx.service()
        wait_for(lambda: svc.get(TASK).status is Status.REPLICATING or proc.poll() is not None, 120, 0.2, "replicating")
        assert svc.get(TASK).status is Status.REPLICATING, svc.get(TASK).last_error
        servers.source.sql("INSERT INTO shop.orders VALUES (4, 'streamed')")
        wait_for(lambda: servers.target.sql("SELECT COUNT(*) FROM shop.orders") == [(4,)], 60, 0.2, "the streamed row")
        svc.close()
        # a difference (written by root, which read_only does not stop), so the reports have rows and fix SQL
        servers.target.sql("UPDATE shop.orders SET note = 'drifted' WHERE id = 2")
        ctx.drs("compare", TASK, "--level", "values", "--json", "--csv", str(exports / "compare.csv"),
                "--html", str(exports / "compare.html"), "--fix-sql", str(exports / "fix.sql"), ok=(3,))  # fmt: skip
        ctx.drs("task", "logs", TASK, "--csv", str(exports / "logs.csv"))
        yield ctx
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        patch.undo()
        servers.reset()


# ---- files ---------------------------------------------------------------------------------------------
def test_no_password_in_the_task_store_after_a_real_run(replicating):
    """The SQLite file and its -wal/-shm after an initial copy, streaming, a compare and a failed task."""
    files = sorted(replicating.home.glob("drs.sqlite3*"))
    assert replicating.home / "drs.sqlite3" in files
    for path in files:
        assert_no_password(path.name, path.read_bytes())
    # every other file of the home but the encrypted secrets is free of them too, and that one is encrypted
    for path in replicating.home.iterdir():
        if path.is_file():
            assert_no_password(path.name, path.read_bytes())


def test_no_password_in_the_dr_log_or_any_export(replicating):
    exports = replicating.exports
    assert {p.name for p in exports.iterdir()} >= {"compare.csv", "compare.html", "fix.sql", "logs.csv"}
    assert "`shop`.`orders`" in (exports / "fix.sql").read_text()  # the reports do hold the difference
    for path in exports.iterdir():
        assert_no_password(path.name, path.read_bytes())
    for args in (
        ["task", "logs", TASK, "--json", "--limit", "1000"], ["task", "show", TASK, "--json"], ["task", "list", "--json"],
        ["task", "health", TASK, "--json"], ["task", "metrics", TASK, "--json"], ["compare", TASK, "--list", "--json"],
        ["compare", TASK, "--run", "1", "--json"],
    ):  # fmt: skip
        result = replicating.drs(*args, ok=(0, 1, 2, 3))
        assert_no_password(" ".join(args), result.stdout + result.stderr)
    assert json.loads(replicating.drs("task", "logs", TASK, "--json").stdout), "the DR log is empty"


# ---- the DR side during DR -------------------------------------------------------------------------------
def test_an_ordinary_account_cannot_write_on_the_dr_side(replicating):
    """No SUPER, no READ_ONLY ADMIN: error 1290 (read-only) on INSERT, UPDATE, DELETE of a replicated table."""
    target = replicating.servers.target
    app = create_account(target, "drs_t_app", "App-Pw-1", "SELECT, INSERT, UPDATE, DELETE, DROP ON shop.*")
    conn = pymysql.connect(host=app.host, port=app.port, user=app.user, password=app.password.reveal(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM shop.orders")  # reading is fine
            assert cur.fetchone()[0] == 4
            for statement in (
                "INSERT INTO shop.orders VALUES (99, 'app write')",
                "UPDATE shop.orders SET note = 'app' WHERE id = 1",
                "DELETE FROM shop.orders WHERE id = 1",
                "DROP TABLE shop.orders",
            ):
                with pytest.raises(pymysql.err.MySQLError) as info:
                    cur.execute(statement)
                assert info.value.args[0] == 1290, (statement, info.value.args)
                assert "read-only" in info.value.args[1] or "read_only" in info.value.args[1]
    finally:
        conn.close()
    assert target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 99 OR note = 'app'") == [(0,)]
    assert target.sql("SELECT @@GLOBAL.read_only")[0][0] == 1


# ---- error texts ---------------------------------------------------------------------------------------
def test_no_password_in_error_texts(replicating, tmp_path):
    """Wrong host, wrong password, a task that fails on the DR side: CLI output, last_error, DR log, repr."""
    servers = replicating.servers
    source = Endpoint("127.0.0.1", servers.source.port, "drs_t_sec", Secret(SOURCE_PW))
    wrong_dr = Endpoint("127.0.0.1", servers.target.port, "drs_t_sec", Secret(WRONG_PW))
    secrets = (*PASSWORDS, WRONG_PW)
    # connect(): the typed error, its repr and a formatted traceback
    import traceback

    for ep in (wrong_dr, Endpoint("no-such-host.invalid", 3306, "drs_t_sec", Secret(WRONG_PW))):
        with pytest.raises(Exception) as info:
            connect(ep)
        text = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
        assert_no_password(f"connect({ep.address})", text, secrets)
    # the CLI's pre-checks and create with a wrong password, and with a host that does not resolve
    for name, overrides in (("wrong-pw-dr", {}), ("wrong-host-dr", {"host": "no-such-host.invalid"})):
        spec = spec_with(servers, name, source, wrong_dr)
        spec["target"].update(overrides)
        spec_file = tmp_path / f"{name}.json"
        spec_file.write_text(json.dumps(spec))
        for args in (["task", "check", "--spec", str(spec_file)], ["task", "create", "--spec", str(spec_file)]):
            result = replicating.drs(*args, ok=(2,))
            assert "failed" in (result.stdout + result.stderr).lower()
            assert_no_password(" ".join(args[:2]), result.stdout + result.stderr, secrets)
    # a task that runs and fails at once: access denied on the DR side
    spec_file = tmp_path / "broken.json"
    spec_file.write_text(json.dumps(spec_with(servers, "broken-dr", source, wrong_dr, databases=["shop"])))
    replicating.drs("task", "create", "--spec", str(spec_file), "--skip-checks")
    run = replicating.drs("run", "broken-dr", ok=(1,))
    assert "access denied" in run.stderr.lower()
    assert_no_password("drs run broken-dr", run.stdout + run.stderr, secrets)
    shown = replicating.drs("task", "show", "broken-dr", "--json").stdout
    assert json.loads(shown)["status"] == "failed"
    logs = replicating.drs("task", "logs", "broken-dr", "--json").stdout
    assert_no_password("task show / logs of broken-dr", shown + logs, secrets)
    svc = replicating.service()
    try:
        with pytest.raises(AccessDenied) as info:
            connect(svc.spec_with_passwords("broken-dr").target)
        assert_no_password("AccessDenied", str(info.value) + repr(svc.spec_with_passwords("broken-dr")), secrets)
    finally:
        svc.close()
    for path in replicating.home.glob("drs.sqlite3*"):
        assert_no_password(path.name, path.read_bytes(), secrets)


# ---- what the windows show -------------------------------------------------------------------------------
ROLES = [*range(0, 14), *range(Qt.ItemDataRole.UserRole.value, Qt.ItemDataRole.UserRole.value + 32)]


def model_texts(model, parent: QModelIndex | None = None) -> Iterator[str]:
    parent = parent or QModelIndex()
    try:
        columns = model.columnCount(parent)
    except TypeError:  # QAbstractListModel keeps columnCount private: one column
        columns = 1
    for row in range(model.rowCount(parent)):
        for column in range(columns):
            index = model.index(row, column, parent)
            for role in ROLES:
                value = index.data(role)
                if value is not None:
                    yield str(value)
            if columns > 1 and column == 0 and model.hasChildren(index):
                yield from model_texts(model, index)
    for column in range(columns):
        yield str(model.headerData(column, Qt.Orientation.Horizontal))


def shown_texts(root: QWidget) -> Iterator[str]:
    """Everything a widget tree can put on the screen or hand to a screen reader, but password fields."""
    for w in [root, *root.findChildren(QWidget)]:
        yield from (w.windowTitle(), w.toolTip(), w.statusTip(), w.whatsThis(), w.accessibleName(), w.accessibleDescription())
        if isinstance(w, QLineEdit):
            if w.echoMode() == QLineEdit.EchoMode.Normal:
                yield w.text()
            yield w.placeholderText()
        elif isinstance(w, QLabel | QAbstractButton):
            yield w.text()
        elif isinstance(w, QTextEdit | QPlainTextEdit):
            yield w.toPlainText()
        elif isinstance(w, QGroupBox):
            yield w.title()
        elif isinstance(w, QStatusBar):
            yield w.currentMessage()
        elif isinstance(w, QTabWidget):
            yield from (w.tabText(i) for i in range(w.count()))
        elif isinstance(w, QComboBox):
            yield from (w.itemText(i) for i in range(w.count()))
        if isinstance(w, QAbstractItemView) and w.model() is not None:
            yield from model_texts(w.model())
    for action in root.findChildren(QAction):
        yield from (action.text(), action.toolTip(), action.statusTip())


def password_fields(root: QWidget, password: str) -> list[QLineEdit]:
    return [e for e in root.findChildren(QLineEdit) if password in e.text()]


def test_main_window_and_wizard_connection_page_never_show_a_password(qtbot, replicating, tmp_path):
    """The main window over the replicating task, rendered offscreen to PNG, and the wizard's connection
    page holding both known passwords: passwords live only in Password-echo fields."""
    svc = replicating.service()
    taskman = TaskManager()
    window = MainWindow(svc, autostart=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.refresh_count >= 1 and window.model.rowCount() >= 1, timeout=30_000)
    assert window.select_task(TASK)
    qtbot.waitUntil(lambda: window.current_record() is not None, timeout=30_000)
    assert window.grab().save(str(tmp_path / "main.png"))
    texts = "\n".join(shown_texts(window))
    assert TASK in texts
    assert_no_password("the main window", texts)
    assert not any(password_fields(window, pw) for pw in PASSWORDS)

    full = svc.spec_with_passwords(TASK)
    prefill = make_spec(replicating.servers, "sec-copy-dr", databases=["shop"])
    for side, ep in (("source", full.source), ("target", full.target)):
        prefill[side].update(user=ep.user, password=ep.password.reveal())
    wiz = CreateTaskWizard(svc, taskman, prefill=prefill)
    qtbot.addWidget(wiz)
    wiz.show()
    qtbot.waitExposed(wiz)
    qtbot.mouseClick(wiz.button(QWizard.WizardButton.NextButton), Qt.MouseButton.LeftButton)
    page = wiz.connections_page
    assert wiz.currentPage() is page
    for box in (page.source_box, page.target_box):
        qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda b=box: b.running_key is None and b.result_label.text() != "Connecting…", timeout=60_000)
        assert "Connection successful" in box.result_label.text()
    qtbot.mouseClick(page.agreement, Qt.MouseButton.LeftButton, pos=QPoint(8, page.agreement.height() // 2))
    assert wiz.grab().save(str(tmp_path / "wizard-connections.png"))
    for pw, box in ((SOURCE_PW, page.source_box), (DR_PW, page.target_box)):
        assert password_fields(wiz, pw) == [box.password_edit]
        assert box.password_edit.echoMode() == QLineEdit.EchoMode.Password
        assert pw not in box.password_edit.displayText()
    assert_no_password("the wizard's connection page", "\n".join(shown_texts(wiz)))
    assert_no_password("the spec the summary shows", json.dumps(wiz.build_spec(masked=True)))
    wiz.check_page.cancel()
    window.close()
    wiz.close()
    taskman.wait_idle()
    svc.close()


# ---- processes -----------------------------------------------------------------------------------------
def process_texts(pid: int) -> str:
    """What `ps` and /proc show of a process and each of its threads: arguments, environment, names."""
    proc = Path(f"/proc/{pid}")
    parts = [
        (proc / "cmdline").read_bytes().decode(errors="replace"),
        (proc / "environ").read_bytes().decode(errors="replace"),
        subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout,
        subprocess.run(["ps", "-ww", "-L", "-o", "comm=,args=", "-p", str(pid)], capture_output=True, text=True).stdout,
        subprocess.run(["ps", "-ww", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout,
    ]
    for thread in (proc / "task").iterdir():
        for name in ("comm", "cmdline", "environ"):
            try:
                parts.append((thread / name).read_bytes().decode(errors="replace"))
            except OSError:  # the thread ended meanwhile
                pass
    return "\n".join(parts)


def test_no_password_in_process_arguments_or_environment(replicating):
    """`drs run NAME` while it replicates, then `drs-desktop` (python -m drs_desktop) replicating the same
    task on its worker thread: /proc/PID/cmdline, environ, every thread's name, and ps."""
    run = replicating.run
    assert run.poll() is None, "drs run has stopped"
    texts = process_texts(run.pid)
    assert f"run {TASK}" in texts and "DRS_SECRET_BACKEND=file" in texts  # we did read the right things
    assert_no_password(f"drs run (pid {run.pid})", texts)
    run.send_signal(signal.SIGTERM)
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err

    gui = subprocess.Popen(
        [sys.executable, "-m", "drs_desktop", "--home", str(replicating.home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=replicating.env,
    )  # fmt: skip
    svc = replicating.service()
    try:
        wait_for(lambda: svc.get(TASK).runner_pid == gui.pid or gui.poll() is not None, 60, 0.2, "the GUI's worker")
        assert gui.poll() is None, gui.communicate()[1]
        replicating.servers.source.sql("INSERT INTO shop.orders VALUES (5, 'via the GUI worker')")
        wait_for(lambda: replicating.servers.target.sql("SELECT COUNT(*) FROM shop.orders WHERE id = 5") == [(1,)],
                 60, 0.2, "a row streamed by the GUI")  # fmt: skip
        texts = process_texts(gui.pid)
        assert "drs_desktop" in texts and "drs-worker-" in texts  # the worker thread is among those read
        assert_no_password(f"drs-desktop (pid {gui.pid})", texts)
    finally:
        svc.close()
        gui.send_signal(signal.SIGTERM)
        _out, err = gui.communicate(timeout=60)
    assert_no_password("drs-desktop's output", err)

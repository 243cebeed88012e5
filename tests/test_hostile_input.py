"""Hostile input, as a careless or malicious operator types it: in every spec field (through `drs task
create`), every `drs` flag and every wizard field. Empty, 100k characters, emoji, right-to-left
overrides, NUL, line breaks, quotes, backticks, SQL fragments, impossible ports, past start times, task
names with slashes, dots and spaces.

Each one is refused with a message that names the field (CLI: exit 2, no traceback; wizard: the page
will not advance and says why), or, where it is legal but odd (database names with spaces, backticks,
quotes, umlauts and reserved words; passwords full of quotes and SQL), it works end to end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_spec
from dr_helpers import assert_databases_identical, wait_for
from gui_helpers import open_wizards
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QDateTime, QPoint, Qt
from PySide6.QtWidgets import QWizard

from engine import cli
from engine.connect import connect
from engine.errors import AccessDenied, SpecInvalid
from engine.spec import Endpoint, Secret, parse_spec, shown_value
from engine.status import Status
from engine.store import SCHEMA_VERSION, STORE_FILE, Store
from engine.tasks import TaskService

HUGE = "x" * 100_000
HOSTILE = {
    "empty": "",
    "huge": HUGE,
    "emoji": "😀🚀",
    "rtl": "\u202eevil\u05d0\u05d1",
    "nul": "a\x00b",
    "newline": "a\nb",
    "quotes": "'\"",
    "backtick": "`x`",
    "sql": "'; DROP TABLE x; --",
}
ODD_TASK_NAMES = ["orders/dr", "orders.dr", "orders dr", "../../etc/passwd", "9lives"]

# Legal but odd identifiers: space, backticks, quotes, umlaut, a reserved word (and one on its own).
ODD_DB = "odd `db` 'x' ü select"
RESERVED_DB = "select"
ODD_TABLE = "t`ab 'le' ü"
# Passwords full of what breaks naive quoting. The service side's stays ASCII: the binlog stream
# (engine/stream.py) still hands pymysql a str password, which pymysql encodes as latin-1.
SOURCE_ODD_PW = "p'\"`; DROP TABLE x; -- \\ %s"
DR_ODD_PW = "ü😀 p'\"`; DROP TABLE x; --"


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def drs(*argv: str) -> tuple[int, str, str]:
    """`drs ARGV` in this process (argv may hold NUL, which no exec can pass): exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


# ---- spec fields through `drs task create` ---------------------------------------------------------
def _cases() -> list:
    """(where in the spec, value, the field the error must name, words of its message)."""
    cases: list[tuple[str, object, str, str]] = []
    for v in [*HOSTILE.values(), *ODD_TASK_NAMES]:
        cases.append(("name", v, "name", "letters, digits, - and _"))
    cases += [
        ("description", HUGE, "description", "at most 256 characters"),
        ("description", HOSTILE["nul"], "description", "control characters"),
        ("description", HOSTILE["newline"], "description", "no line breaks"),
        ("description", HOSTILE["quotes"], "description", "must not contain"),
        ("description", HOSTILE["sql"], "description", "must not contain"),
    ]
    for v in HOSTILE.values():
        cases.append(("source.host", v, "source.host", "IP address or domain name"))
    for v in (0, -1, 70000, "abc", "", "70000", "-1", HUGE, 3306.5, True, "😀"):
        cases.append(("source.port", v, "source.port", "1 to 65535"))
    cases += [
        ("source.user", "", "source.user", "required"),
        ("source.user", HUGE, "source.user", "at most 80"),
        ("source.user", HOSTILE["nul"], "source.user", "control characters"),
        ("target.user", HOSTILE["newline"], "target.user", "line breaks"),
        ("source.password", "", "source.password", "required"),
        ("target.password", HUGE, "target.password", "at most 512"),
        ("source.tls", HOSTILE["sql"], "source.tls", "must be one of off, required, verify_ca"),
        ("source.ca_file", "", "source.ca_file", "required when tls is verify_ca"),
        ("source.ca_file", HOSTILE["nul"], "source.ca_file", "no such file"),
        ("source.ca_file", HUGE, "source.ca_file", "no such file"),
        ("source.ca_file", HOSTILE["sql"], "source.ca_file", "no such file"),
        ("relationship", HOSTILE["sql"], "relationship", "must be one of standby, active"),
        ("relationship", HUGE, "relationship", "must be one of standby, active"),
        ("network", HOSTILE["emoji"], "network", "must be one of public, vpn"),
        ("databases", [""], "databases", "list of database names"),
        ("databases", [HUGE], "databases", "at most 64 characters"),
        ("databases", ["a\x00b"], "databases", "NUL"),
        ("databases", ["trailing "], "databases", "ends with a space"),
        ("databases", ["emoji😀"], "databases", "beyond U+FFFF"),
        ("databases", ["MySQL"], "databases", "system databases"),
        ("databases", ["shop", "shop"], "databases", "listed twice"),
        ("databases", "shop", "databases", "list of database names"),
        ("databases", [], "databases", "at least one database"),
        ("start", "2000-01-01T00:00", "start", "must be in the future"),
        # its id names no time: xdist's workers must collect the same ids, also across a minute's turn
        ("start", (datetime.now() - timedelta(minutes=5)).isoformat(timespec="minutes"), "start", "in the future",
         "start=five minutes ago"),
        ("start", HUGE, "start", "local date-time"),
        ("start", HOSTILE["nul"], "start", "local date-time"),
        ("start", HOSTILE["sql"], "start", "local date-time"),
        ("migrate_definer", "yes", "migrate_definer", "true or false"),
        ("tags", {"a b": "x"}, "tags.a b", "key:"),
        ("tags", {"😀": "x"}, "tags.😀", "key:"),
        ("tags", {HOSTILE["sql"]: "x"}, f"tags.{HOSTILE['sql']}", "key:"),
        ("tags", {HUGE: "x"}, f"tags.{shown_value(HUGE)}", "key: 1-128"),
        ("tags", {"env": HUGE}, "tags.env", "at most 255"),
        ("tags", {"env": HOSTILE["nul"]}, "tags.env", "control characters"),
        ("tags", {"env": HOSTILE["newline"]}, "tags.env", "control characters"),
    ]
    for v in (0, -1, 70000, "abc"):
        cases.append(("flow_control", {"max_mb_s": v}, "flow_control.max_mb_s", "1 to 9999"))
    cases.append(
        ("flow_control", {"max_mb_s": 5, "windows": [{"start": HOSTILE["sql"], "end": "x"}]},
         "flow_control.windows[0]", "HH:MM")
    )  # fmt: skip
    return [pytest.param(*c[:4], id=c[4] if len(c) > 4 else f"{c[0]}={short(c[1])}") for c in cases]


def put(spec: dict, where: str, value: object) -> dict:
    target = spec
    *path, last = where.split(".")
    for key in path:
        target = target[key]
    target[last] = value
    if where == "source.ca_file":
        spec["source"]["tls"] = "verify_ca"
    return spec


def offline_spec(name: str = "orders-dr") -> dict:
    return {
        "name": name,
        "relationship": "standby",
        "source": {"host": "db1.example.invalid", "port": 3306, "user": "drs", "password": "pw-1"},
        "target": {"host": "db2.example.invalid", "port": 3306, "user": "drs", "password": "pw-2"},
    }


@pytest.mark.parametrize(("where", "value", "field", "words"), _cases())
def test_each_hostile_spec_value_is_refused_naming_its_field(home, memory_keyring, tmp_path, where, value, field, words):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(put(offline_spec(), where, value)), encoding="utf-8")
    code, out, err = drs("task", "create", "--spec", str(spec_file), "--skip-checks")
    assert code == 2, (out, err[:500])
    assert "Traceback" not in err and "unexpected error" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"  - {field}: ")]
    assert lines, f"no error names {field!r}: {err[:500]}"
    assert any(words in line for line in lines), lines[0][:300]
    assert max(len(line) for line in err.splitlines()) < 600, "a message that echoes a huge value buries itself"
    assert not (home / "drs.sqlite3").exists()  # refused before the store is even opened


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
SPEC_PATHS = [
    "name", "description", "relationship", "network", "databases", "flow_control", "migrate_definer",
    "start", "tags", "source", "target", *(f"{side}.{key}" for side in ("source", "target")
    for key in ("host", "port", "user", "password", "password_env", "tls", "ca_file")),
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(SPEC_PATHS), value=JSON_VALUES, extra=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=2))
def test_any_json_value_in_any_field_is_valid_or_a_field_error(where, value, extra):
    """The one validation module never crashes: a value is accepted or refused naming a field."""
    raw = put(offline_spec(), where, value)
    if where in ("source", "target") and isinstance(value, dict):
        raw[where] = {**value, **extra}
    try:
        spec = parse_spec(raw, env={"DRS_PW": "from-env"})
    except SpecInvalid as exc:
        assert exc.errors and all(isinstance(e.field, str) and e.field and e.message for e in exc.errors)
    else:
        assert spec.name == raw["name"]


def test_legal_but_odd_values_are_kept_exactly(home, memory_keyring, tmp_path):
    """Unicode, RTL, quotes, backticks and SQL where they are allowed survive the store and the secrets."""
    odd = {
        "description": "😀 \u202eRTL עברית `backtick` ; DROP TABLE x --",
        "tags": {"env": "😀 \u202e 'q' `b` ; DROP TABLE tags; --", "cost.center/1": "ü"},
        "databases": [ODD_DB, RESERVED_DB, "sp ace", "a/b.c", "ü" * 64],
    }
    spec = {**offline_spec("odd-values-dr"), **odd}
    spec["source"].update(user="o'brien\"`; DROP TABLE x; --", password=SOURCE_ODD_PW + "\x00\n")
    spec["target"].update(user="ü😀", password=DR_ODD_PW)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    code, out, err = drs("task", "create", "--spec", str(spec_file), "--skip-checks")
    assert code == 0, err
    code, out, err = drs("task", "show", "odd-values-dr", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert {k: shown[k] for k in odd} == odd
    assert (shown["source"]["user"], shown["target"]["user"]) == (spec["source"]["user"], "ü😀")
    svc = TaskService(home)
    full = svc.spec_with_passwords("odd-values-dr")
    assert full.source.password.reveal() == SOURCE_ODD_PW + "\x00\n"
    assert full.target.password.reveal() == DR_ODD_PW
    # the SQL fragments were data: the store still has its tables and the one task
    assert drs("task", "list")[0] == 0 and [t.name for t in svc.store.list_tasks()] == ["odd-values-dr"]
    svc.close()


# ---- every `drs` flag ------------------------------------------------------------------------------
NAMES = [*HOSTILE.values(), *ODD_TASK_NAMES]
DURATIONS = ["", "abc", "0", "-1", "1e309", "99999999999d", HUGE, HOSTILE["nul"], HOSTILE["sql"], HOSTILE["emoji"]]
FLAG_CASES = [
    # argv with {} for the hostile value, the values, words every refusal must contain
    (["--home", "{}", "task", "list"], ["", " ", HOSTILE["nul"], HUGE], "--home"),
    *((argv, NAMES, "no task named") for argv in (
        ["task", "show", "{}"], ["task", "delete", "{}", "--yes"], ["task", "pause", "{}"],
        ["task", "resume", "{}"], ["task", "health", "{}"], ["task", "metrics", "{}"],
        ["task", "logs", "{}"], ["task", "skip", "{}", "--event", "binlog.000001:4"], ["run", "{}"],
        ["promote", "{}"], ["compare", "{}", "--level", "rows"],
    )),
    (["task", "health", "orders-dr", "--delay-threshold", "{}"],
     ["", "abc", "0", "-1", "nan", "inf", "1e309", HUGE, HOSTILE["nul"], HOSTILE["sql"]], "--delay-threshold"),
    (["task", "metrics", "orders-dr", "--since", "{}"], DURATIONS, "--since"),
    (["task", "logs", "orders-dr", "--since", "{}"], [*DURATIONS[:1], "abc", "2025-13-45", "99999999999d", HUGE, HOSTILE["nul"]], "--since"),
    (["task", "logs", "orders-dr", "--until", "{}"], ["abc", "999999999d", HOSTILE["sql"], HOSTILE["rtl"]], "--until"),
    (["task", "logs", "orders-dr", "--limit", "{}"], ["0", "-1", "abc", "", "99999999999999999999", "1.5"], "--limit"),
    (["task", "logs", "orders-dr", "--level", "{}"], ["", "ERROR", HOSTILE["sql"], HOSTILE["nul"]], "--level"),
    (["task", "logs", "orders-dr", "--grep", "{}"], [HUGE], "--grep"),
    (["task", "logs", "orders-dr", "--csv", "{}"], ["", HOSTILE["nul"], "/nonexistent-dir/x.csv", HUGE], "--csv"),
    (["task", "skip", "orders-dr", "--event", "{}"],
     ["", "abc", "x:1", "x:-1", "binlog.000001:abc", HOSTILE["sql"], HUGE, HOSTILE["nul"]], "--event"),
    *((argv, ["", HOSTILE["nul"], HUGE, "/nonexistent/spec.json", HOSTILE["sql"]], "--spec") for argv in (
        ["task", "create", "--spec", "{}"], ["task", "check", "--spec", "{}"], ["task", "params", "--spec", "{}"],
    )),
    (["compare", "orders-dr", "--level", "{}"], ["", "ROWS", HOSTILE["sql"]], "--level"),
    (["compare", "orders-dr", "--level", "rows", "--tables", "{}"],
     ["nodot", ".t", "db.", HOSTILE["sql"], HUGE, HOSTILE["emoji"]], "--tables"),
    (["compare", "orders-dr", "--level", "rows", "--parallel", "{}"], ["0", "-1", "abc", "99999"], "--parallel"),
    (["compare", "orders-dr", "--level", "rows", "--chunk-rows", "{}"], ["0", "-1", "abc", "99999999999"], "--chunk-rows"),
    (["compare", "orders-dr", "--run", "{}"], ["abc", "-1", "0", "99999999999999999999999", ""], "--run"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "values", "words"), [pytest.param(*c, id=" ".join(c[0])) for c in FLAG_CASES]
)
def test_each_hostile_flag_value_exits_2_naming_the_flag(home, memory_keyring, tmp_path, argv, values, words):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(offline_spec()))
    assert drs("task", "create", "--spec", str(spec_file), "--skip-checks")[0] == 0
    failures = []
    if argv[0] != "--home":
        argv = ["--home", str(home), *argv]
    for value in values:
        args = [value if a == "{}" else a for a in argv]
        code, _out, err = drs(*args)
        ok = code == 2 and words.lower() in err.lower() and "Traceback" not in err and "unexpected error" not in err
        ok = ok and max(map(len, err.splitlines())) < 600  # a huge value echoed in full would bury the message
        if not ok:
            failures.append(f"{short(value)} -> exit {code}: {err.strip()[:300]}")
    assert not failures, "\n".join(failures)
    # nothing hostile reached the store as SQL: the task is still there, the store still opens
    code, out, _ = drs("--home", str(home), "task", "list", "--json")
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["orders-dr"]


def test_grep_with_sql_and_wildcards_is_literal_text(home, memory_keyring, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(offline_spec()))
    assert drs("task", "create", "--spec", str(spec_file), "--skip-checks")[0] == 0
    svc = TaskService(home)
    svc.store.add_log("orders-dr", "info", "runner", "50% done; next: '; DROP TABLE x; -- `bt` 😀\u202e")
    for text, hits in [(HOSTILE["sql"], 1), ("%", 1), ("_", 0), ("😀\u202e", 1), (HOSTILE["nul"], 0), ("'\"", 0)]:
        code, out, err = drs("task", "logs", "orders-dr", "--grep", text, "--json")
        assert code == 0, err
        assert len(json.loads(out)) == hits, text
    assert [t.name for t in svc.store.list_tasks()] == ["orders-dr"]
    svc.close()


# ---- the wizard --------------------------------------------------------------------------------------
@pytest.fixture
def open_wizard(qtbot, home, memory_keyring):
    yield from open_wizards(qtbot, home)


def next_enabled(wiz: QWizard) -> bool:
    return wiz.button(QWizard.WizardButton.NextButton).isEnabled()


def click_next(qtbot, wiz: QWizard) -> None:
    before = wiz.currentId()
    assert next_enabled(wiz), f"Next is disabled on page {before}"
    qtbot.mouseClick(wiz.button(QWizard.WizardButton.NextButton), Qt.MouseButton.LeftButton)
    assert wiz.currentId() == before + 1


def retype_spin(qtbot, spin, text: str) -> None:
    spin.lineEdit().selectAll()
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Delete)
    qtbot.keyClicks(spin.lineEdit(), text)


def test_wizard_fields_refuse_hostile_text_with_the_fields_message(qtbot, open_wizard):
    """Pasted text (setText: NUL and line breaks cannot be typed) in each field of pages 1, 2, 3 and 6."""
    wiz = open_wizard(offline_spec("orders-dr"))
    page = wiz.task_page
    assert next_enabled(wiz)
    for value in NAMES:
        page.name_edit.setText(value)
        assert "letters, digits, - and _" in page.name_error.text(), short(value)
        assert not page.name_error.isHidden() and not next_enabled(wiz), short(value)
    page.name_edit.setText("orders-dr")
    for value, words in [(HUGE, "at most 256"), (HOSTILE["nul"], "control characters"),
                         (HOSTILE["newline"], "line breaks"), (HOSTILE["sql"], "must not contain")]:  # fmt: skip
        page.description_edit.setText(value)
        assert words in page.description_error.text() and not next_enabled(wiz), short(value)
    page.description_edit.setText(HOSTILE["emoji"] + HOSTILE["rtl"] + HOSTILE["backtick"])  # legal
    assert page.description_error.isHidden() and next_enabled(wiz)
    for key, value, words in [("a b", "v", "key:"), (HOSTILE["sql"], "v", "key:"), ("env", HUGE, "at most 255"),
                              ("env", HOSTILE["nul"], "control characters")]:  # fmt: skip
        page.tag_model.set_rows([(key, value)])
        assert words in page.tags_error.text() and not next_enabled(wiz), short((key, value))
    page.tag_model.set_rows([("env", HOSTILE["emoji"] + HOSTILE["rtl"])])
    assert page.tags_error.isHidden() and next_enabled(wiz)
    page.tls_combo.setCurrentIndex(page.tls_combo.findData("verify_ca"))
    for value in ("", HOSTILE["nul"], HUGE, HOSTILE["sql"]):
        page.ca_edit.setText(value)
        assert ("no such file" in page.ca_error.text() or "required" in page.ca_error.text()), short(value)
        assert not next_enabled(wiz)
    page.tls_combo.setCurrentIndex(page.tls_combo.findData("off"))
    click_next(qtbot, wiz)

    # page 2: connections (a test connection is never started for a refused value)
    box = wiz.connections_page.source_box
    for edit, label, cases in [
        (box.host_edit, box.host_error, [(v, "IP address or domain name") for v in HOSTILE.values()]),
        (box.user_edit, box.user_error, [("", "required"), (HUGE, "at most 80"), (HOSTILE["nul"], "control"),
                                         (HOSTILE["newline"], "line breaks")]),
        (box.password_edit, box.password_error, [("", "required"), (HUGE, "at most 512")]),
    ]:  # fmt: skip
        good = edit.text()
        for value, words in cases:
            edit.setText(value)
            assert words in label.text(), short(value)
            assert not box.test_button.isEnabled() and not next_enabled(wiz), short(value)
        edit.setText(good)
        assert label.isHidden() and box.test_button.isEnabled()
    # the port box takes digits only, within 0-65535; 0 is typed and named
    for typed, value in [("abc", None), ("-1", 1), ("70000", 7000), ("0", 0), ("99999", 9999)]:
        retype_spin(qtbot, box.port_spin, typed)
        assert 0 <= box.port_spin.value() <= 65535
        if value is not None:
            assert box.port_spin.value() == value, typed
    retype_spin(qtbot, box.port_spin, "0")
    assert "must be from 1 to 65535 (got 0)" in box.port_error.text() and not box.test_button.isEnabled()
    # legal but odd account names and passwords are taken as they are
    box.port_spin.setValue(3306)
    box.user_edit.setText("o'brien`; DROP TABLE x; --")
    box.password_edit.setText(DR_ODD_PW)
    assert box.user_error.isHidden() and box.password_error.isHidden() and box.test_button.isEnabled()

    # page 3's flow control and page 6's start time, straight on their widgets
    configure = wiz.configure_page
    configure.flow_on.setChecked(True)
    configure.in_ranges.setChecked(True)
    for typed in ("abc", "-1", "0"):  # the box takes digits only: "0" is what is left to refuse
        retype_spin(qtbot, configure.mb_spin, typed)
        assert 0 <= configure.mb_spin.value() <= 99999
    assert "from 1 to 9999 (got 0)" in configure.mb_error.text()
    configure.mb_spin.setValue(100)
    configure.window_model.set_rows([(HOSTILE["sql"], "24:00")])
    assert "HH:MM" in configure.window_error.text() and not configure.isComplete()
    configure.window_model.set_rows([("08:00", HOSTILE["nul"])])
    assert "HH:MM" in configure.window_error.text()
    start = wiz.start_page
    start.later_radio.setChecked(True)
    for past in (datetime.now() - timedelta(minutes=1), datetime(2000, 1, 1)):
        start.when_edit.setDateTime(QDateTime(past))
        assert "must be in the future" in start.start_error.text() and not start.isComplete()
    start.when_edit.setDateTime(QDateTime(datetime.now() + timedelta(days=1)))
    assert start.isComplete() and start.start_error.isHidden()


# ---- odd identifiers, end to end -----------------------------------------------------------------------
def odd_schema(server) -> None:
    server.sql(
        f"CREATE DATABASE {q(ODD_DB)}",
        f"CREATE DATABASE {q(RESERVED_DB)}",
        "CREATE DATABASE `outside the task`",
        f"CREATE TABLE {q(ODD_DB)}.{q(ODD_TABLE)} (`i d` INT PRIMARY KEY, `sel``ect` VARCHAR(60), `'q'` TEXT, "
        "`ü` DECIMAL(6,2)) DEFAULT CHARSET=utf8mb4",
        f"CREATE TABLE {q(RESERVED_DB)}.`from` (`order` INT PRIMARY KEY, `group` VARCHAR(20))",
        "CREATE TABLE `outside the task`.t (id INT PRIMARY KEY)",
        "INSERT INTO `outside the task`.t VALUES (1)",
    )
    conn = server.root(ODD_DB)
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {q(ODD_TABLE)} VALUES (%s, %s, %s, %s)",
            [(1, HOSTILE["sql"], "😀\u202e `x` \"y\"", 1.5), (2, "a\x00b\nc", None, -2), (3, "", "ü" * 100, None)],
        )
        cur.execute(f"INSERT INTO {q(RESERVED_DB)}.`from` VALUES (1, 'where'), (2, 'and')")
    conn.close()


def odd_accounts(dbs) -> tuple[Endpoint, Endpoint]:
    """An account per side whose password is full of quotes and SQL (the DR one with emoji)."""
    made = []
    for server, user, password in ((dbs.source, "drs_t_src", SOURCE_ODD_PW), (dbs.target, "drs_t_dr", DR_ODD_PW)):
        conn = server.root()
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'")
        conn.close()
        made.append(Endpoint("127.0.0.1", server.port, user, Secret(password)))
    return made[0], made[1]


def test_a_password_full_of_quotes_sql_umlauts_and_emoji_logs_in(dbs):
    _, dr = odd_accounts(dbs)
    conn = connect(dr)  # pymysql alone sends latin-1: "ü" would be denied, an emoji a UnicodeEncodeError
    conn.close()
    with pytest.raises(AccessDenied) as info:
        connect(dr.with_password(DR_ODD_PW[:-1]))
    assert DR_ODD_PW[:-1] not in str(info.value)


def odd_task_spec(dbs, source: Endpoint, target: Endpoint) -> dict:
    spec = make_spec(dbs, "odd-dr", databases=[ODD_DB, RESERVED_DB])
    for side, ep in (("source", source), ("target", target)):
        spec[side].update(user=ep.user, password=ep.password.reveal())
    return spec


def test_wizard_lists_and_keeps_odd_database_names(qtbot, dbs, open_wizard):
    odd_schema(dbs.source)
    wiz = open_wizard(odd_task_spec(dbs, *odd_accounts(dbs)))
    click_next(qtbot, wiz)
    page2 = wiz.connections_page
    for box in (page2.source_box, page2.target_box):
        qtbot.mouseClick(box.test_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda b=box: b.running_key is None and b.result_label.text() != "Connecting…", timeout=60_000)
        assert "Connection successful" in box.result_label.text(), box.result_label.text()
    qtbot.mouseClick(page2.agreement, Qt.MouseButton.LeftButton, pos=QPoint(8, page2.agreement.height() // 2))
    click_next(qtbot, wiz)
    page = wiz.configure_page
    qtbot.waitUntil(lambda: not page.loading, timeout=60_000)
    assert {ODD_DB, RESERVED_DB, "outside the task"} <= set(page.db_model.names())
    assert sorted(page.checked_databases()) == sorted([ODD_DB, RESERVED_DB])
    assert page.db_error.isHidden() and next_enabled(wiz)
    spec = parse_spec(wiz.build_spec())
    assert sorted(spec.databases) == sorted([ODD_DB, RESERVED_DB])
    assert spec.target.password.reveal() == DR_ODD_PW


def test_odd_database_names_replicate_end_to_end(dbs, home, monkeypatch, tmp_path):
    """Pre-checks, initial copy and streamed changes of databases named `odd `db` 'x' ü select` and `select`."""
    monkeypatch.setenv("DRS_SECRET_BACKEND", "file")  # the `drs run` process reads the passwords too
    odd_schema(dbs.source)
    spec_file = tmp_path / "odd.json"
    spec_file.write_text(json.dumps(odd_task_spec(dbs, *odd_accounts(dbs)), ensure_ascii=False), encoding="utf-8")
    code, out, err = drs("--home", str(home), "task", "create", "--spec", str(spec_file))  # with the pre-checks
    assert code == 0, out + err
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--home", str(home), "run", "odd-dr", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )  # fmt: skip
    svc = TaskService(home)
    try:
        wait_for(lambda: svc.get("odd-dr").status is Status.REPLICATING or proc.poll() is not None, 120, 0.2, "replicating")
        assert svc.get("odd-dr").status is Status.REPLICATING, svc.get("odd-dr").last_error
        conn = dbs.source.root(ODD_DB)
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {q(ODD_TABLE)} VALUES (4, %s, %s, 9.99)", ("`; DELETE FROM x; #", "\u202e😀"))
            cur.execute(f"UPDATE {q(ODD_TABLE)} SET `sel``ect` = %s WHERE `i d` = 1", ("it's \"quoted\"",))
            cur.execute(f"DELETE FROM {q(ODD_TABLE)} WHERE `i d` = 3")
            cur.execute(f"INSERT INTO {q(RESERVED_DB)}.`from` VALUES (3, 'or')")
            cur.execute("INSERT INTO `outside the task`.t VALUES (2)")
        conn.close()
        wait_for(
            lambda: dbs.target.sql(f"SELECT COUNT(*) FROM {q(RESERVED_DB)}.`from`") == [(3,)]
            and dbs.target.sql(f"SELECT `i d` FROM {q(ODD_DB)}.{q(ODD_TABLE)} ORDER BY 1") == [(1,), (2,), (4,)],
            60, 0.2, "the streamed changes",
        )  # fmt: skip
        assert_databases_identical(dbs.source, dbs.target, [ODD_DB, RESERVED_DB])
        assert "outside the task" not in dbs.target.user_databases()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, run_err = proc.communicate(timeout=60)
        svc.close()
    assert proc.returncode == 0 and "Traceback" not in run_err, run_err
    for pw in (SOURCE_ODD_PW, DR_ODD_PW):
        assert pw not in run_err and pw.encode() not in b"".join(p.read_bytes() for p in Path(home).glob("drs.sqlite3*"))


# ---- a task store that is garbage, truncated, or from a newer version -----------------------------------
def damaged_store(home: Path, kind: str) -> Path:
    home.mkdir(parents=True)
    path = home / STORE_FILE
    if kind == "garbage":
        path.write_bytes(random.Random(11).randbytes(64 * 1024))
        return path
    store = Store(home)
    store.create_task(parse_spec(offline_spec(), env={}))
    for i in range(500):  # a few hundred KB, so a cut loses real pages
        store.add_log("orders-dr", "info", "runner", f"entry {i} " + "x" * 400)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if kind == "newer":
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for extra in home.glob(STORE_FILE + "-*"):
        extra.unlink()
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "advice"),
    [("garbage", "restore it from a backup"), ("truncated", "restore it from a backup"), ("newer", "upgrade DRS Desktop")],
)
def test_unusable_store_is_refused_at_start_and_left_untouched(qapp, tmp_path, monkeypatch, kind, advice):
    """`drs task list` and the start of `drs-desktop` (drs_desktop.app.main) name the file and what to do."""
    from drs_desktop import app as desktop

    home = tmp_path / "home"
    path = damaged_store(home, kind)
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in home.iterdir()))

    code, out, err = drs("--home", str(home), "task", "list")
    assert code != 0 and out == ""
    assert str(path) in err and advice in err and "Traceback" not in err and "unexpected error" not in err, err

    shown: list[str] = []
    monkeypatch.setattr(desktop.QMessageBox, "critical", lambda _parent, _title, text: shown.append(text))
    style_sheet, style = qapp.styleSheet(), qapp.style().name()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            assert desktop.main(["--home", str(home)]) == 1
    finally:
        qapp.setStyleSheet(style_sheet)
        qapp.setStyle(style)
    assert len(shown) == 1 and str(path) in shown[0] and advice in shown[0], shown
    assert str(path) in stderr.getvalue()

    after = (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in home.iterdir()))
    assert after[0] == before[0], "the store file was changed"
    assert after[1:] == before[1:]

"""Task passwords (engine.secrets and engine.tasks): the OS keyring when there is one, else an encrypted
file in the DRS home, and never anywhere else: a DBA greps the task store and the DR log for a known
password and must not find it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from engine.errors import SecretStoreError, SpecInvalid
from engine.secrets import KEY_FILE, SECRETS_FILE, SERVICE, SecretStore
from engine.spec import Secret, parse_spec
from engine.store import STORE_FILE
from engine.tasks import TaskService

SOURCE_PW = "Src-Known-Pw-51c9e"
TARGET_PW = "Dr-Known-Pw-0a77b"


@pytest.fixture
def auto_backend(monkeypatch):
    monkeypatch.delenv("DRS_SECRET_BACKEND", raising=False)


@pytest.fixture
def no_os_keyring(auto_backend):
    """A machine without an OS keyring: keyring answers with its 'fail' backend."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def spec(name: str = "orders-dr"):
    return parse_spec(
        {
            "name": name,
            "relationship": "standby",
            "source": {"host": "db1.example.invalid", "port": 3306, "user": "drs", "password": SOURCE_PW},
            "target": {"host": "db2.example.invalid", "port": 3306, "user": "drs", "password": TARGET_PW},
            "tags": {"env": "prod"},
        },
        env={},
    )


def store_bytes(home: Path) -> bytes:
    """Everything SQLite wrote: the database and its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))


# ---- the OS keyring --------------------------------------------------------------------------------


def test_keyring_used_when_available(home, memory_keyring, auto_backend):
    secrets = SecretStore(home)
    assert secrets.backend_name.startswith("OS keyring")
    secrets.set_password("orders-dr", "source", Secret(SOURCE_PW))
    secrets.set_password("orders-dr", "target", TARGET_PW)
    assert memory_keyring.items == {
        (SERVICE, "orders-dr/source"): SOURCE_PW,
        (SERVICE, "orders-dr/target"): TARGET_PW,
    }
    assert secrets.get_password("orders-dr", "source") == Secret(SOURCE_PW)
    assert secrets.get_password("orders-dr", "target").reveal() == TARGET_PW
    assert not (home / SECRETS_FILE).exists() and not (home / KEY_FILE).exists()
    secrets.set_password("orders-dr", "source", "changed-pw")  # Modify Connection Details
    assert secrets.get_password("orders-dr", "source").reveal() == "changed-pw"


def test_side_must_be_source_or_target(home, memory_keyring, auto_backend):
    with pytest.raises(ValueError, match="source"):
        SecretStore(home).set_password("orders-dr", "primary", "x")


def test_backend_choice_must_be_known(home, monkeypatch):
    monkeypatch.setenv("DRS_SECRET_BACKEND", "vault")
    with pytest.raises(SecretStoreError, match="auto, keyring or file"):
        SecretStore(home)


def test_forced_keyring_without_one_fails_clearly(home, no_os_keyring, monkeypatch):
    monkeypatch.setenv("DRS_SECRET_BACKEND", "keyring")
    secrets = SecretStore(home)
    with pytest.raises(SecretStoreError) as info:
        secrets.set_password("orders-dr", "source", SOURCE_PW)
    assert "source password of task orders-dr" in str(info.value) and SOURCE_PW not in str(info.value)


# ---- the encrypted file ----------------------------------------------------------------------------


@pytest.mark.parametrize("why", ["env", "fail_keyring"])
def test_encrypted_file_when_asked_or_when_no_keyring(home, memory_keyring, monkeypatch, why):
    if why == "env":
        monkeypatch.setenv("DRS_SECRET_BACKEND", "file")
    else:
        monkeypatch.delenv("DRS_SECRET_BACKEND", raising=False)
        keyring.set_keyring(keyring.backends.fail.Keyring())  # memory_keyring restores the previous one
    secrets = SecretStore(home)
    assert secrets.backend_name == "encrypted file"
    secrets.set_password("orders-dr", "source", SOURCE_PW)
    secrets.set_password("orders-dr", "target", TARGET_PW)
    assert secrets.get_password("orders-dr", "source").reveal() == SOURCE_PW
    assert SecretStore(home).get_password("orders-dr", "target").reveal() == TARGET_PW  # a later process
    assert memory_keyring.items == {}
    key, data = home / KEY_FILE, home / SECRETS_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(data.stat().st_mode) == 0o600
    raw = data.read_bytes()
    assert SOURCE_PW.encode() not in raw and TARGET_PW.encode() not in raw and b"orders-dr" not in raw


def test_loose_key_file_permissions_are_tightened(home, no_os_keyring):
    secrets = SecretStore(home)
    secrets.set_password("orders-dr", "source", SOURCE_PW)
    os.chmod(home / KEY_FILE, 0o644)
    assert secrets.get_password("orders-dr", "source").reveal() == SOURCE_PW
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600


def test_wrong_key_gives_a_clear_error(home, no_os_keyring, tmp_path):
    SecretStore(home).set_password("orders-dr", "source", SOURCE_PW)
    (home / KEY_FILE).unlink()
    SecretStore(tmp_path / "other").set_password("x-task", "source", "other")
    (home / KEY_FILE).write_bytes((tmp_path / "other" / KEY_FILE).read_bytes())
    with pytest.raises(SecretStoreError, match="cannot be decrypted.*re-enter the task passwords"):
        SecretStore(home).get_password("orders-dr", "source")


def test_missing_password_is_named(home, no_os_keyring):
    with pytest.raises(SecretStoreError, match="no target password stored for task orders-dr"):
        SecretStore(home).get_password("orders-dr", "target")


@pytest.mark.parametrize("backend", ["keyring", "file"])
def test_delete_task_removes_both_sides_only_of_that_task(home, memory_keyring, monkeypatch, backend):
    monkeypatch.setenv("DRS_SECRET_BACKEND", backend)
    secrets = SecretStore(home)
    for task in ("orders-dr", "billing-dr"):
        for side in ("source", "target"):
            secrets.set_password(task, side, f"{task}-{side}-pw")
    secrets.delete_task("orders-dr")
    secrets.delete_task("orders-dr")  # deleting twice is harmless
    for side in ("source", "target"):
        with pytest.raises(SecretStoreError):
            secrets.get_password("orders-dr", side)
        assert secrets.get_password("billing-dr", side).reveal() == f"billing-dr-{side}-pw"


def test_several_writers_never_lose_a_password(home, no_os_keyring):
    """GUI workers (threads, each with its own SecretStore) and `drs` processes store passwords at once."""
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            secrets = SecretStore(home)
            for n in range(15):
                secrets.set_password(f"thread{i}-{n}", "source", f"pw-{i}-{n}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    script = (
        "import sys\nfrom engine.secrets import SecretStore\ns = SecretStore(sys.argv[1])\n"
        "for n in range(15):\n    s.set_password(f'proc{sys.argv[2]}-{n}', 'target', f'pw-p{sys.argv[2]}-{n}')\n"
    )
    env = dict(os.environ, DRS_SECRET_BACKEND="file")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(home), str(i)], env=env) for i in range(2)]
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(60) for p in procs] == [0, 0]
    assert errors == []
    secrets = SecretStore(home)
    for i in range(3):
        for n in range(15):
            assert secrets.get_password(f"thread{i}-{n}", "source").reveal() == f"pw-{i}-{n}"
    for i in range(2):
        for n in range(15):
            assert secrets.get_password(f"proc{i}-{n}", "target").reveal() == f"pw-p{i}-{n}"


# ---- tasks keep passwords out of SQLite and the DR log ---------------------------------------------


@pytest.mark.parametrize("backend", ["keyring", "file"])
def test_password_only_in_the_secret_store(home, memory_keyring, monkeypatch, backend):
    monkeypatch.setenv("DRS_SECRET_BACKEND", backend)
    svc = TaskService()  # DRS_HOME from the home fixture
    assert svc.home == home
    record = svc.create(spec())
    assert record.status.value == "starting"
    full = svc.spec_with_passwords("orders-dr")
    assert (full.source.password.reveal(), full.target.password.reveal()) == (SOURCE_PW, TARGET_PW)
    svc.set_password("orders-dr", "target", "New-Target-Pw-3")
    assert svc.spec_with_passwords("orders-dr").target.password.reveal() == "New-Target-Pw-3"
    svc.store.add_log("orders-dr", "info", "runner", f"connected to {full.source.address}")
    shown = (
        repr(svc.get("orders-dr"))
        + repr(svc.store.list_tasks())
        + repr(full)
        + str(svc.get("orders-dr").to_json())
    )
    logs = repr(svc.store.logs("orders-dr"))
    for pw in (SOURCE_PW, TARGET_PW, "New-Target-Pw-3"):
        assert pw not in shown and pw not in logs
        assert pw.encode() not in store_bytes(home)
        assert pw.encode() not in (home / SECRETS_FILE).read_bytes() if backend == "file" else True
    svc.delete("orders-dr")
    assert not svc.store.name_taken("orders-dr")
    with pytest.raises(SecretStoreError):
        svc.secrets.get_password("orders-dr", "source")
    with pytest.raises(SecretStoreError):
        svc.secrets.get_password("orders-dr", "target")
    assert SOURCE_PW.encode() not in store_bytes(home)
    if backend == "keyring":
        assert memory_keyring.items == {}
    svc.close()


def test_duplicate_name_does_not_touch_the_existing_passwords(home, memory_keyring, auto_backend):
    svc = TaskService(home)
    svc.create(spec())
    other = parse_spec(
        {
            "name": "orders-dr",
            "relationship": "standby",
            "source": {"host": "db3.example.invalid", "user": "drs", "password": "other-pw"},
            "target": {"host": "db4.example.invalid", "user": "drs", "password": "other-pw"},
        },
        env={},
    )
    with pytest.raises(SpecInvalid) as info:
        svc.create(other)
    assert info.value.errors[0].field == "name"
    assert svc.spec_with_passwords("orders-dr").source.password.reveal() == SOURCE_PW
    assert svc.get("orders-dr").spec.source.host == "db1.example.invalid"
    svc.close()

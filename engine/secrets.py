"""Passwords of DR tasks: the OS keyring when one is usable, else an encrypted file in the DRS home.

A password is stored under service "drs-desktop" and user "<task>/<side>" and never anywhere else:
not in SQLite, not in logs, not in exception texts (see engine.spec.Secret).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import keyring
import keyring.errors
from cryptography.fernet import Fernet, InvalidToken

from engine.errors import SecretStoreError
from engine.spec import Secret

try:
    import fcntl
except ImportError:  # Windows: the OS keyring is used there; only threads of one process are serialized
    fcntl = None  # type: ignore[assignment]

SERVICE = "drs-desktop"
SIDES = ("source", "target")
KEY_FILE = "secrets.key"
SECRETS_FILE = "secrets.enc"
LOCK_FILE = "secrets.lock"

# One lock per secrets file for the whole process: the GUI and its workers may each hold a SecretStore.
_FILE_LOCKS: dict[Path, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(path.resolve(), threading.Lock())


def _os_keyring_usable() -> bool:
    """True when keyring has a real backend (not the 'fail' one, not a plaintext file)."""
    backend = keyring.get_keyring()
    module = type(backend).__module__
    if module.startswith(("keyring.backends.fail", "keyrings.alt")):
        return False
    if module.startswith("keyring.backends.chainer"):
        return any(not type(b).__module__.startswith(("keyring.backends.fail", "keyrings.alt")) for b in backend.backends)
    try:
        return backend.priority > 0
    except Exception:  # some backends compute priority lazily and raise when unusable
        return False


class EncryptedFileBackend:
    """Fernet-encrypted JSON file; the key sits beside it, readable by the owner only."""

    name = "encrypted file"

    def __init__(self, home: Path):
        self.home = home
        self.key_path = home / KEY_FILE
        self.data_path = home / SECRETS_FILE
        self.lock_path = home / LOCK_FILE
        self._lock = _process_lock(self.data_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize read-modify-write of the file across threads and processes (GUI and `drs`)."""
        with self._lock:
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _fernet(self) -> Fernet:
        if not self.key_path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        mode = stat.S_IMODE(self.key_path.stat().st_mode)
        if os.name == "posix" and mode & 0o077:
            os.chmod(self.key_path, 0o600)
        return Fernet(self.key_path.read_bytes().strip())

    def _load(self, f: Fernet) -> dict[str, str]:
        if not self.data_path.exists():
            return {}
        try:
            return json.loads(f.decrypt(self.data_path.read_bytes()))
        except InvalidToken:
            raise SecretStoreError(
                f"{self.data_path} cannot be decrypted with {self.key_path}; re-enter the task passwords"
            ) from None

    def _save(self, f: Fernet, data: dict[str, str]) -> None:
        tmp = self.data_path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(f.encrypt(json.dumps(data).encode()))
        os.replace(tmp, self.data_path)

    def get(self, user: str) -> str | None:
        with self._locked():
            return self._load(self._fernet()).get(user)

    def set(self, user: str, password: str) -> None:
        with self._locked():
            f = self._fernet()
            data = self._load(f)
            data[user] = password
            self._save(f, data)

    def delete(self, user: str) -> None:
        with self._locked():
            f = self._fernet()
            data = self._load(f)
            if data.pop(user, None) is not None:
                self._save(f, data)


class KeyringBackend:
    def __init__(self) -> None:
        self.name = f"OS keyring ({type(keyring.get_keyring()).__name__})"

    def get(self, user: str) -> str | None:
        return keyring.get_password(SERVICE, user)

    def set(self, user: str, password: str) -> None:
        keyring.set_password(SERVICE, user, password)

    def delete(self, user: str) -> None:
        with suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(SERVICE, user)


class SecretStore:
    """Per-task passwords. `backend_name` says which store is in use, for the GUI and `drs`."""

    def __init__(self, home: str | os.PathLike[str], prefer: str | None = None):
        prefer = prefer or os.environ.get("DRS_SECRET_BACKEND", "auto")
        if prefer not in ("auto", "keyring", "file"):
            raise SecretStoreError("DRS_SECRET_BACKEND must be auto, keyring or file")
        use_keyring = prefer == "keyring" or (prefer == "auto" and _os_keyring_usable())
        self._backend: KeyringBackend | EncryptedFileBackend = (
            KeyringBackend() if use_keyring else EncryptedFileBackend(Path(home))
        )

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @staticmethod
    def _user(task: str, side: str) -> str:
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        return f"{task}/{side}"

    def set_password(self, task: str, side: str, password: Secret | str) -> None:
        value = password.reveal() if isinstance(password, Secret) else password
        try:
            self._backend.set(self._user(task, side), value)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreError(f"cannot store the {side} password of task {task} in the keyring: {type(exc).__name__}") from None

    def get_password(self, task: str, side: str) -> Secret:
        try:
            value = self._backend.get(self._user(task, side))
        except keyring.errors.KeyringError as exc:
            raise SecretStoreError(f"cannot read the {side} password of task {task}: {type(exc).__name__}") from None
        if value is None:
            raise SecretStoreError(f"no {side} password stored for task {task}; use Modify Connection Details")
        return Secret(value)

    def delete_task(self, task: str) -> None:
        for side in SIDES:
            with suppress(keyring.errors.KeyringError):
                self._backend.delete(self._user(task, side))

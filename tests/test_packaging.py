"""The packaged app: `bash packaging/build-app.sh` builds the one-folder dist/drs-desktop/ with PyInstaller,
and its two programs work on their own, without the source tree or the venv.

The build runs once for the module, into a temporary folder, so a clean clone builds it fresh.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPL_PASSWORD, make_spec
from dr_helpers import wait_for
from PySide6.QtGui import QImage

from engine.secrets import SECRETS_FILE
from engine.store import STORE_FILE

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 600  # seconds; about 35 s on a 2-core machine

REFRESH_SVG = REPO / "resources" / "icons" / "refresh.svg"
NOT_PASSED_ON = ("PYTHONPATH", "PYTHONHOME", "DRS_HOME", "DRS_DEBUG")

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 120)  # the first test also waits for the build


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("packaged")
    env = {**os.environ, "PYTHON": sys.executable, "PYINSTALLER_CONFIG_DIR": str(base / "pyinstaller-cache")}
    build = subprocess.run(
        ["bash", str(REPO / "packaging" / "build-app.sh"), "--dist", str(base / "dist"), "--work", str(base / "work")],
        env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    app = base / "dist" / "drs-desktop"
    assert f"built {app}" in build.stdout
    return app


def frozen_env(**extra: str) -> dict[str, str]:
    """The user's environment less what would point the programs at the source tree or another home."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED_ON}
    env.update(QT_QPA_PLATFORM="offscreen", **extra)
    return env


def run_frozen(
    app: Path, program: str, *args: str | Path, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(app / program), *map(str, args)], cwd=cwd, env=frozen_env(**env), capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def test_packaged_window_opens_and_is_saved(app_dir, tmp_path):
    home, shot = tmp_path / "home", tmp_path / "shot.png"
    result = run_frozen(app_dir, "drs-desktop", "--home", home, "--screenshot", shot, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    image = QImage(str(shot))
    assert not image.isNull(), f"{shot} is not a PNG Qt can read"
    assert image.width() > 400 and image.height() > 300, (image.width(), image.height())
    pixels = image.convertToFormat(QImage.Format.Format_RGB32)
    colours = set(np.frombuffer(bytes(pixels.constBits()), dtype=np.uint32).tolist())
    assert len(colours) > 50, "the window is (nearly) one flat colour"
    # resources/ travels inside the bundle and the app finds it there: the toolbar's Refresh button is
    # drawn from refresh.svg (without it, a plain grey dot of another colour)
    stroke = re.search(r'stroke="#([0-9a-fA-F]{6})"', REFRESH_SVG.read_text(encoding="utf-8"))
    assert stroke, "refresh.svg has no stroke colour to look for"
    assert 0xFF000000 | int(stroke[1], 16) in colours, "the toolbar's SVG icons were not drawn"


def test_packaged_folder_holds_both_programs_and_the_resources(app_dir):
    for program in ("drs-desktop", "drs"):
        assert os.access(app_dir / program, os.X_OK), f"{program} missing from {app_dir}"
    bundled = {(p.parent.name, p.name) for p in app_dir.rglob("*") if p.is_file()}  # (folder, file)
    for name in ("style.qss", "drs-desktop.desktop"):
        assert ("resources", name) in bundled
    assert ("icons", "app.svg") in bundled
    # only the Qt modules the app uses: none of the large ones it never imports
    assert not any(part.startswith(("libQt6Quick", "libQt6Qml", "libQt6WebEngine")) for _, part in bundled)
    assert not any(part.startswith("libqgtk3") for _, part in bundled)


def test_packaged_cli_lists_and_refuses_unknown_tasks(app_dir, tmp_path):
    home = tmp_path / "home"
    usage = run_frozen(app_dir, "drs", "--help", cwd=tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: drs")
    listed = run_frozen(app_dir, "drs", "--home", home, "task", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    missing = run_frozen(app_dir, "drs", "--home", home, "task", "show", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert "'nope'" in missing.stderr


def test_packaged_cli_checks_creates_and_replicates_on_real_servers(app_dir, dbs, tmp_path):
    """The frozen `drs` alone: pre-checks against both servers, the password in the encrypted file, the
    initial copy, a row streamed from the binlog, a clean stop on SIGTERM."""
    home = tmp_path / "home"
    dbs.source.sql(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40) CHARACTER SET utf8mb4)",
        "INSERT INTO shop.orders VALUES (1, 'first')",
    )
    spec_file = tmp_path / "packaged-dr.json"
    spec_file.write_text(json.dumps(make_spec(dbs, "packaged-dr")), encoding="utf-8")

    def drs(*args: str | Path) -> subprocess.CompletedProcess:
        result = run_frozen(app_dir, "drs", "--home", home, *args, cwd=tmp_path, DRS_SECRET_BACKEND="file")
        assert REPL_PASSWORD not in result.stdout + result.stderr
        return result

    def status() -> str:
        return json.loads(drs("task", "show", "packaged-dr", "--json").stdout)["status"]

    created = drs("task", "create", "--spec", spec_file)
    assert created.returncode == 0, created.stderr
    runner = subprocess.Popen(
        [str(app_dir / "drs"), "--home", str(home), "run", "packaged-dr", "--quiet"],
        cwd=tmp_path, env=frozen_env(DRS_SECRET_BACKEND="file"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: status() == "replicating", 120, 0.3, "the task to reach replicating")
        dbs.source.sql("INSERT INTO shop.orders VALUES (2, 'streamed ✓')")
        streamed = [(1, "first"), (2, "streamed ✓")]
        orders = "SELECT id, item FROM shop.orders ORDER BY id"
        wait_for(lambda: dbs.target.sql(orders) == streamed, 60, 0.2, "row 2 on the DR side")
    finally:
        runner.send_signal(signal.SIGTERM)
        try:
            _out, err = runner.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            runner.kill()  # never leave a runner behind; the test fails on the exception
            raise
    assert runner.returncode == 0, err
    assert "Traceback" not in err
    assert (home / SECRETS_FILE).exists(), "the passwords were not written to the encrypted secret file"
    stored = b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))
    assert stored and REPL_PASSWORD.encode() not in stored

#!/usr/bin/env bash
# Build the one-folder app dist/drs-desktop/ (the `drs-desktop` GUI and the `drs` CLI, Python and Qt
# inside) with PyInstaller from packaging/pyinstaller/drs-desktop.spec.
#
#   bash packaging/build-app.sh [--dist DIR] [--work DIR] [--smoke PNG]
#
#   --dist DIR    where the app folder goes (default: dist/, giving dist/drs-desktop/)
#   --work DIR    PyInstaller's scratch folder (default: build/pyinstaller/)
#   --smoke PNG   after building, run the built programs once: `drs --help`, `drs task list` and
#                 `drs-desktop --screenshot PNG` on a throw-away DRS home (offscreen without a display)
#
# Uses the repository's .venv (set up by scripts/setup-env.sh when missing; $PYTHON overrides) and
# installs PyInstaller into it from the `package` extra when it is not there yet.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
SMOKE=""

usage() { sed -n '5,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dist | --work | --smoke)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "build-app: $1 needs a value" >&2
        usage
        exit 2
      fi
      case "$1" in
        --dist) DIST="$2" ;;
        --work) WORK="$2" ;;
        --smoke) SMOKE="$2" ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *)
      echo "build-app: unknown argument '$1'" >&2
      usage
      exit 2
      ;;
  esac
done

if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
else
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    # shellcheck source=../scripts/setup-env.sh
    source "$ROOT/scripts/setup-env.sh" app
  fi
  PY="$ROOT/.venv/bin/python"
fi
if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
  echo "build-app: installing PyInstaller (the 'package' extra) into $("$PY" -c 'import sys; print(sys.prefix)')"
  "$PY" -m pip install -q -e "$ROOT[package]"
fi

start=$(date +%s)
# --noconfirm: replace an earlier build without asking; UPX is off in the spec (slower, and breaks Qt)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" "$ROOT/packaging/pyinstaller/drs-desktop.spec"
APP="$DIST/drs-desktop"
seconds=$(($(date +%s) - start))
echo "build-app: built $APP in ${seconds}s ($(du -sh "$APP" | cut -f1))"
echo "build-app: run $APP/drs-desktop (the app) or $APP/drs --help (the CLI)"

if [ -n "$SMOKE" ]; then
  home="$(mktemp -d)"
  trap 'rm -rf "$home"' EXIT
  if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"; fi
  "$APP/drs" --help >/dev/null
  "$APP/drs" --home "$home" task list
  "$APP/drs-desktop" --home "$home" --screenshot "$SMOKE"
  echo "build-app: smoke run passed; window saved to $SMOKE"
fi

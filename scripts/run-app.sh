#!/usr/bin/env bash
# Sets up DRS Desktop (system libraries, .venv) and launches the app. Arguments go to drs-desktop.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh" app
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = "Linux" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "run-app: no display found; starting with QT_QPA_PLATFORM=offscreen (set DISPLAY to see the window)" >&2
  export QT_QPA_PLATFORM=offscreen
fi
exec "$VENV/bin/drs-desktop" "$@"

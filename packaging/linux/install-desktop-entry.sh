#!/usr/bin/env bash
# Install the DRS Desktop launcher and icon for the current user.
#   bash packaging/linux/install-desktop-entry.sh [VENV | APP_FOLDER]
# VENV: a virtual environment with DRS Desktop installed (default: the repository's .venv);
# APP_FOLDER: the one-folder app built by packaging/build-app.sh (e.g. dist/drs-desktop).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${1:-$ROOT/.venv}"
RESOURCES="$ROOT/resources"
if [ -x "$TARGET/drs-desktop" ] && [ ! -d "$TARGET/drs-desktop" ]; then
  EXEC="$(cd "$TARGET" && pwd)/drs-desktop"  # the packaged app, which carries its own resources/
  [ -d "$TARGET/_internal/resources" ] && RESOURCES="$TARGET/_internal/resources"
elif [ -x "$TARGET/bin/drs-desktop" ]; then
  EXEC="$(cd "$TARGET" && pwd)/bin/drs-desktop"
else
  echo "install-desktop-entry: no drs-desktop in '$TARGET' (give a venv with DRS Desktop installed, or the app folder dist/drs-desktop)" >&2
  exit 2
fi
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$APPS" "$ICONS"
cp "$RESOURCES/icons/app.svg" "$ICONS/drs-desktop.svg"
sed "s|^Exec=.*|Exec=\"$EXEC\"|" "$RESOURCES/drs-desktop.desktop" > "$APPS/drs-desktop.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$APPS" || true
echo "installed $APPS/drs-desktop.desktop (Exec=$EXEC)"

#!/usr/bin/env bash
# Install the DRS Desktop launcher and icon for the current user.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-$ROOT/.venv}"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$APPS" "$ICONS"
cp "$ROOT/resources/icons/app.svg" "$ICONS/drs-desktop.svg"
sed "s|^Exec=.*|Exec=$VENV/bin/drs-desktop|" "$ROOT/resources/drs-desktop.desktop" > "$APPS/drs-desktop.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$APPS" || true
echo "installed $APPS/drs-desktop.desktop (Exec=$VENV/bin/drs-desktop)"

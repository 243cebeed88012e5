#!/usr/bin/env bash
# Shared setup for the README's two commands: system packages (as root, when missing), then a venv
# in .venv with DRS Desktop installed editable. Source it; $1 is "app" or "test".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DRS_VENV:-$ROOT/.venv}"
what="${1:-app}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "setup: please install: $*" >&2; return 1; }
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

missing_debs() {
  local pkg out=()
  command -v dpkg-query >/dev/null 2>&1 || return 0
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || out+=("$pkg")
  done
  echo "${out[@]:-}"
}

# Python 3.11+ with venv
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  apt_install python3 python3-venv python3-pip
  PY=python3
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi

# Libraries the Qt wheels load (also for the offscreen platform used by tests)
libs=$(missing_debs libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0)
if [ -n "$libs" ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  apt_install $libs
fi
if [ "$what" = "app" ]; then
  libs=$(missing_debs libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0)
  if [ -n "$libs" ] && command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    apt_install $libs || true
  fi
fi

# Real MariaDB servers: the test suite starts its own on loopback, and so does the app's sandbox
# (`drs sandbox start`, Help > Try with a Sandbox) for a newcomer without two servers at hand.
# Only the binaries are needed: no system-wide server is configured or started for us.
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  if [ "$what" = "test" ]; then
    apt_install mariadb-server
  else
    apt_install mariadb-server || echo "setup: mariadb-server not installed: the sandbox needs it (the app itself runs without)" >&2
  fi
fi
# sysbench: the third-party OLTP workload of the fault suite (tests/test_sysbench.py)
if [ "$what" = "test" ] && ! command -v sysbench >/dev/null 2>&1; then
  apt_install sysbench
fi

if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
if [ "$what" = "test" ]; then
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
else
  "$VENV/bin/python" -m pip install -q -e "$ROOT"
fi

#!/usr/bin/env bash
# Build a wheel of DRS Desktop into dist/, resources included.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
cd "$ROOT"
"$PY" -m pip wheel --no-deps -w dist .
ls -1 dist/*.whl

#!/usr/bin/env bash
# Sets up everything the test suite needs (MariaDB server binaries, Qt libraries, .venv with the
# test extra) and runs the whole suite: real MariaDB servers, real SQLite, real Qt widgets offscreen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh" test
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
# Two test files at a time (pytest-xdist, whole files per worker, each worker with its own pair of
# MariaDB servers): most tests wait on servers, so this halves the wall time on two cores.
# DRS_TEST_WORKERS=0 runs everything in this one process.
cores="$(nproc 2>/dev/null || echo 2)"
workers="${DRS_TEST_WORKERS:-$(( cores < 2 ? 2 : (cores > 4 ? 4 : cores) ))}"
xdist=()
if [ "$workers" -gt 0 ]; then xdist=(-n "$workers" --dist loadfile); fi
set +e
"$VENV/bin/python" -m pytest "${xdist[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Sets up everything the test suite needs (MariaDB server binaries, Qt libraries, .venv with the
# test extra) and runs the whole suite: real MariaDB servers, real SQLite, real Qt widgets offscreen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh" test
cd "$ROOT"
export QT_QPA_PLATFORM=offscreen
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"

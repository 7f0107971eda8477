#!/usr/bin/env bash
# The suite on SQLite, PostgreSQL and MariaDB, the three in parallel (each test
# gets its own database, so they share nothing); every log is printed, and the
# run fails if any backend failed or ran no test.
set -uo pipefail
logs=$(mktemp -d)
pids=()
for backend in sqlite postgresql mariadb; do
  scripts/pytest-backend.sh "$backend" "$@" >"$logs/$backend.log" 2>&1 &
  pids+=($!)
done
failed=0
i=0
for backend in sqlite postgresql mariadb; do
  if wait "${pids[$i]}"; then result=passed; else result=FAILED; failed=1; fi
  echo "===================== $backend: $result ====================="
  cat "$logs/$backend.log"
  i=$((i + 1))
done
rm -rf "$logs"
exit "$failed"

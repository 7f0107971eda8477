#!/usr/bin/env bash
# Run the whole suite on one backend. pytest's exit code 5 ("no tests ran") is a
# failure here: a green run must have run tests.
set -uo pipefail
backend=$1; shift
.venv/bin/python -m pytest --backend "$backend" -q -p no:cacheprovider "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "ERROR: no tests ran on $backend" >&2
  exit 1
fi
exit "$status"

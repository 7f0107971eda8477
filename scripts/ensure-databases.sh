#!/usr/bin/env bash
# Start the machine's PostgreSQL and MariaDB when they are down; fail loudly if they
# cannot be reached afterwards. No backend is ever skipped.
set -euo pipefail

wait_for() {  # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "ERROR: $name is not reachable on 127.0.0.1 and could not be started" >&2
  return 1
}

pg_up() { python3 - <<'PY'
import socket; socket.create_connection(("127.0.0.1", 5432), 1).close()
PY
}
maria_up() { python3 - <<'PY'
import socket; socket.create_connection(("127.0.0.1", 3306), 1).close()
PY
}

if ! pg_up 2>/dev/null; then
  echo "PostgreSQL is down: starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
wait_for PostgreSQL pg_up

if ! maria_up 2>/dev/null; then
  echo "MariaDB is down: starting it" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
wait_for MariaDB maria_up

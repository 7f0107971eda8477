"""The _tasks façade's throughput: ``GET /_tasks``, ``GET /_tasks?detailed`` and
``GET /_cat/tasks`` with 100 and 10 000 active tasks, beside the same server's
``GET /status/health`` rps taken in the same run.

The goal is a flat time per listed task from 100 to 10 000 tasks: every list is
one streamed query plus per-row work, nothing per task that grows with the total.
Bounded in time: each figure is a few seconds of load (``--seconds``).

    .venv/bin/python -m bench.opensearch [--backends sqlite,postgresql] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert

from bench.common import free_port, temp_database
from bench.runtime import start, stop
from overlord.states import RunnerState, TaskState
from overlord.store.models import Task
from overlord.timeutil import utcnow

CONNECTIONS = 4
SIZES = (100, 10_000)
ENDPOINTS = {
    "/_tasks": "/_tasks",
    "/_tasks?detailed": "/_tasks?detailed=true",
    "/_cat/tasks": "/_cat/tasks",
}


def fill_active(url: str, start_at: int, count: int) -> None:
    """``count`` active WAITING noop tasks, inserted straight into the store."""
    engine = create_engine(url)
    now = utcnow()
    rows = [
        {
            "task_id": f"bench_{n}",
            "type": "noop",
            "group_id": f"bench_{n}",
            "datasource": "bench",
            "created_at": now,
            "status": TaskState.RUNNING,
            "runner_status": RunnerState.WAITING,
            "duration_ms": -1,
            "location_port": -1,
            "location_tls_port": -1,
            "payload": '{"type":"noop"}',
            "priority": 0,
            "active": True,
            "request_headers": '{"X-Opaque-Id":"bench"}' if n % 2 else None,
        }
        for n in range(start_at, start_at + count)
    ]
    with engine.begin() as connection:
        for first in range(0, len(rows), 1000):
            connection.execute(insert(Task), rows[first : first + 1000])
    engine.dispose()


def measure(url: str, seconds: float) -> tuple[float, float]:
    """(requests per second, mean seconds per request) over ``CONNECTIONS``
    keep-alive connections for ``seconds`` (at least one request each)."""
    counts = [0] * CONNECTIONS
    busy = [0.0] * CONNECTIONS
    stop_at = time.monotonic() + seconds

    def loop(index: int) -> None:
        with requests.Session() as http:
            while counts[index] == 0 or time.monotonic() < stop_at:
                began = time.perf_counter()
                response = http.get(url, timeout=120)
                busy[index] += time.perf_counter() - began
                assert response.status_code == 200, response.text[:200]
                counts[index] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    total = sum(counts)
    return total / elapsed, sum(busy) / total


def run_backend(backend: str, seconds: float, workdir: Path) -> list[str]:
    lines = [f"{backend}:"]
    with temp_database(backend, workdir) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OVERLORD_")}
        env["OVERLORD_DATABASE_URL"] = url
        subprocess.run(
            [sys.executable, "-m", "overlord", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start(
            ["serve", "--port", str(port), "--workers", "0", "--http-workers", "2"],
            env,
            workdir / f"serve-{backend}.log",
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{base}/status/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
            filled = 0
            for size in SIZES:
                fill_active(url, filled, size - filled)
                filled = size
                health, _ = measure(f"{base}/status/health", seconds)
                lines.append(f"  {size} active tasks: /status/health {health:.0f} rps")
                for name, path in ENDPOINTS.items():
                    rps, per_request = measure(base + path, seconds)
                    listed = size + 1  # the list request itself is listed too
                    lines.append(
                        f"    {name:<18} {rps:8.1f} rps  {rps / health:.4f} x health  "
                        f"{per_request * 1e6 / listed:6.1f} µs per listed task "
                        f"(latency {per_request * 1000:.1f} ms)"
                    )
        finally:
            stop(server)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=3.0)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        for backend in options.backends.split(","):
            for line in run_backend(backend, options.seconds, Path(workdir)):
                print(line, flush=True)


if __name__ == "__main__":
    main()

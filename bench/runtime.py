"""Runtime benchmark: submit→RUNNING dispatch latency and noop tasks/s.

Figures are printed beside a baseline taken in the same run on the same server:
the p50 latency of ``GET /status/health``. Runs against SQLite and PostgreSQL
(MariaDB with ``--backends``); every request goes to 127.0.0.1 only.

    .venv/bin/python -m bench.runtime [--backends sqlite,postgresql] [--tasks 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select

from bench.common import free_port, temp_database
from overlord.store.models import Task, Worker


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "overlord", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_worker(engine: Any, worker: Any) -> None:
    """Until the worker started last has its row: it registers once its task
    processes are ready, so the figures measure a running worker, not its start."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("worker exited")
        with engine.connect() as connection:
            ids = connection.execute(select(Worker.id)).scalars().all()
        if any(f":{worker.pid}:" in worker_id for worker_id in ids):
            return
        time.sleep(0.1)
    raise RuntimeError("worker did not register")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_backend(backend: str, tasks: int, workdir: Path) -> list[str]:
    lines = []
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
            workdir / "serve.log",
        )
        engine = create_engine(url)
        try:
            http = requests.Session()
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get(f"{base}/status/health", timeout=1).text == "true":
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
            health = []
            for _ in range(300):
                began = time.perf_counter()
                http.get(f"{base}/status/health")
                health.append(time.perf_counter() - began)
            health_p50 = statistics.median(health) * 1000
            lines.append(
                f"{backend}: /status/health p50 {health_p50:.2f} ms (baseline)"
            )

            clients = threading.local()

            def submit(run_time: int, datasource: str) -> str:
                if not hasattr(clients, "http"):
                    clients.http = requests.Session()
                response = clients.http.post(
                    f"{base}/druid/indexer/v1/task",
                    json={
                        "type": "noop",
                        "dataSource": datasource,
                        "runTime": run_time,
                    },
                )
                response.raise_for_status()
                return str(response.json()["task"])

            def started_rows(datasource: str) -> list[tuple[float, float | None]]:
                with engine.connect() as connection:
                    rows = connection.execute(
                        select(
                            Task.created_at, Task.started_at, Task.finished_at
                        ).where(Task.datasource == datasource)
                    ).all()
                return rows  # type: ignore[return-value]

            # Dispatch latency: one idle worker, tasks submitted one at a time.
            worker = start(["worker", "--capacity", "1"], env, workdir / "worker.log")
            wait_for_worker(engine, worker)
            submit(1, "warmup")
            time.sleep(1.0)
            latencies = []
            for _ in range(min(tasks, 50)):
                task_id = submit(1, "latency")
                while True:
                    with engine.connect() as connection:
                        row = connection.execute(
                            select(
                                Task.created_at, Task.started_at, Task.finished_at
                            ).where(Task.task_id == task_id)
                        ).one()
                    if row.finished_at is not None:
                        break
                    time.sleep(0.005)
                # RUNNING is the claim; the worker's slot is free again before the
                # next submit, so this is dispatch latency alone.
                latencies.append(
                    (row.started_at - row.created_at).total_seconds() * 1000
                )
                time.sleep(0.05)
            stop(worker)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            lines.append(
                f"{backend}: submit→RUNNING p50 {p50:.1f} ms ({p50 / health_p50:.1f}x health p50), "
                f"p99 {p99:.1f} ms"
            )
            # Throughput: a burst of noop tasks (runTime 1 ms) on 1, 2, 4 slots.
            for slots in (1, 2, 4):
                datasource = f"burst{slots}"
                worker = start(
                    ["worker", "--capacity", str(slots)], env, workdir / "worker.log"
                )
                wait_for_worker(engine, worker)
                # A burst: submitted by 8 clients at once. One client submitting
                # in turn waits for a durable commit (10-20 ms here) per task, so
                # 100 submits alone took 1-2 s of the figure's time.
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    list(pool.map(submit, [1] * tasks, [datasource] * tasks))
                deadline = time.monotonic() + 600
                while True:
                    rows = started_rows(datasource)
                    if all(finished is not None for _, _, finished in rows):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("tasks did not finish")
                    time.sleep(0.2)
                first = min(created for created, _, _ in rows)
                last = max(finished for _, _, finished in rows)
                rate = tasks / (last - first).total_seconds()
                lines.append(
                    f"{backend}: {slots} slot(s): {rate:.1f} noop tasks/s "
                    f"({rate * health_p50 / 1000:.3f} tasks per health-request time)"
                )
                stop(worker)
        finally:
            stop(server)
            engine.dispose()
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--tasks", type=int, default=100)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        for backend in options.backends.split(","):
            for line in run_backend(backend, options.tasks, Path(workdir)):
                print(line, flush=True)


if __name__ == "__main__":
    main()

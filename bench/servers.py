"""granian (WSGI) vs gunicorn (gthread) serving overlord's app, same processes x
threads, on each backend: GET /status/health, GET /task/{id}/status, POST /task.

Run: ``.venv/bin/python -m bench.servers [--threads 4,8,16] [--backends …]``.
Each (backend, threads) group starts each server in turn on a fresh port against
the same migrated database; every rps is shown as a ratio against the same
server's health rps (``÷own``) and granian's health rps of that group
(``÷granian``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench import common
from bench.load import HEALTH, HOST, NOOP_SUBMIT, LoadGenerator, Request, choose

SERVERS = ("granian", "gunicorn")
APP_FACTORY = "overlord.wsgi:create"


def server_argv(kind: str, port: int, processes: int, threads: int) -> list[str]:
    if kind == "granian":
        return [
            common.tool("granian"),
            "--interface",
            "wsgi",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--blocking-threads",
            str(threads),
            "--no-access-log",
            "--log-level",
            "warning",
            APP_FACTORY,
        ]
    return [
        common.tool("gunicorn"),
        "--worker-class",
        "gthread",
        "--workers",
        str(processes),
        "--threads",
        str(threads),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        f"{APP_FACTORY}()",
    ]


def status_request(task_id: str) -> Request:
    quoted = urllib.parse.quote(task_id, safe="")
    return Request(path=f"/druid/indexer/v1/task/{quoted}/status")


def bench_group(
    load: LoadGenerator,
    backend: str,
    url: str,
    processes: int,
    threads: int,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind in SERVERS:
        port = common.free_port()
        env = common.server_env(url)
        label = f"{kind} {processes}x{threads}"
        with common.Server(
            label, server_argv(kind, port, processes, threads), port, env
        ):
            task_id = common.submit_noop(port)
            plan = [
                ("health", HEALTH, args.connections),
                ("status", status_request(task_id), args.connections),
                ("submit", NOOP_SUBMIT, args.connections),
            ]
            measured = common.measure_round_robin(
                load, port, plan, seconds=args.seconds, warmup=args.warmup
            )
        for endpoint, result in measured.items():
            rows.append(
                {
                    "backend": backend,
                    "processes": processes,
                    "threads": threads,
                    "server": kind,
                    "endpoint": endpoint,
                    "rps": result.rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "requests": result.requests,
                    "errors": result.errors,
                }
            )
            print(
                f"  {backend:10} {label:14} {endpoint:7} {result.rps:8.0f} rps "
                f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:7.2f} ms "
                f"errors {result.errors}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    health = {
        (r["backend"], r["threads"], r["server"]): r["rps"]
        for r in rows
        if r["endpoint"] == "health"
    }
    lines = []
    for r in rows:
        own = health[(r["backend"], r["threads"], r["server"])]
        granian = health.get((r["backend"], r["threads"], "granian"), 0.0)
        lines.append(
            [
                r["backend"],
                f"{r['processes']}x{r['threads']}",
                r["server"],
                r["endpoint"],
                common.rate(r["rps"]),
                common.ratio(r["rps"], own),
                common.ratio(r["rps"], granian),
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                r["errors"],
            ]
        )
    return common.table(
        [
            "backend",
            "procsxthr",
            "server",
            "endpoint",
            "rps",
            "÷own health",
            "÷granian health",
            "p50 ms",
            "p99 ms",
            "errors",
        ],
        lines,
    )


def summary(rows: list[dict[str, Any]]) -> str:
    """Per backend and endpoint: gunicorn's rps as a ratio of granian's, per
    threads setting (> 1: gunicorn faster)."""
    by_key = {(r["backend"], r["threads"], r["endpoint"], r["server"]): r for r in rows}
    lines = []
    for backend, threads, endpoint, server in by_key:
        if server != "granian":
            continue
        other = by_key.get((backend, threads, endpoint, "gunicorn"))
        if other is None:
            continue
        mine = by_key[(backend, threads, endpoint, server)]
        lines.append(
            [
                backend,
                threads,
                endpoint,
                common.ratio(other["rps"], mine["rps"]),
                common.ratio(other["p99_ms"], mine["p99_ms"]),
            ]
        )
    return common.table(
        [
            "backend",
            "threads",
            "endpoint",
            "gunicorn÷granian rps",
            "gunicorn÷granian p99",
        ],
        lines,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers", description=__doc__
    )
    common.common_arguments(parser)
    parser.add_argument("--processes", type=int, default=2, help="(%(default)s)")
    parser.add_argument(
        "--threads", default="4,8,16", help="per process, comma-separated (%(default)s)"
    )
    args = parser.parse_args(argv)
    load = choose(args.load)
    backends = common.usable_backends(args.backends)
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    started = time.monotonic()
    print(
        f"bench.servers: {load.name}, {args.connections} connections, "
        f"{args.seconds:g} s per measurement (+{args.warmup:g} s warm-up), "
        f"{args.processes} processes x threads {threads_list}, backends {backends}",
        flush=True,
    )
    print(f"machine: {common.machine_note()}", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="overlord-bench-") as folder:
        for backend in backends:
            with common.temp_database(backend, Path(folder)) as url:
                common.migrate(url)
                for threads in threads_list:
                    rows += bench_group(
                        load, backend, url, args.processes, threads, args
                    )
    elapsed = time.monotonic() - started
    print()
    print("## Servers: rps and latency; ÷own = rps ÷ the same server's health rps,")
    print("## ÷granian = rps ÷ granian's health rps with the same processes x threads")
    print(render(rows))
    print()
    print(summary(rows))
    print(f"\nbench.servers took {elapsed:.0f} s")
    document = {
        "load": load.name,
        "connections": args.connections,
        "seconds": args.seconds,
        "rows": rows,
        "elapsed_s": elapsed,
    }
    print(f"results: {common.save_results('servers', document)}")
    return document


if __name__ == "__main__":
    main()

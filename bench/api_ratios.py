"""overlord's own goals, measured through the real CLI (``overlord serve``):

(a) GET /task/{id}/status rps ÷ GET /status/health rps   goal ≥ 0.70
(b) POST /task (noop) rps ÷ GET /status/health rps         goal ≥ 0.50
(c) GET /tasks?state=complete&max=100 latency with 1 M stored complete tasks ÷
    the same with 1 k                                       goal ≤ 2.0

Per backend: a fresh migrated database with 1 k complete tasks (bulk INSERT …
SELECT, bench/fill.py); serve; health, status, list, submit; stop; fill up to 1 M;
serve again; health (the new baseline), status, list, submit. The list is measured
on one connection, so its p50 and p99 are latencies, not queueing; the other
endpoints on ``--connections``.

Run: ``.venv/bin/python -m bench.api_ratios [--backends sqlite,postgresql,mariadb]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.fill import fill_complete_tasks
from bench.load import HEALTH, HOST, NOOP_SUBMIT, LoadGenerator, Request, choose
from bench.servers import status_request

LIST_COMPLETE = Request(path="/druid/indexer/v1/tasks?state=complete&max=100")
GOALS = {"status": 0.70, "submit": 0.50, "list": 2.0}


def serve_argv(port: int, url: str, args: argparse.Namespace) -> list[str]:
    return [
        common.tool("overlord"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(args.task_slots),
        "--http-workers",
        str(args.http_workers),
        "--database-url",
        url,
    ]


def phase(
    load: LoadGenerator,
    backend: str,
    url: str,
    stored: str,
    task_id: str | None,
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, Any]], str]:
    """One server run: every endpoint measured; returns results and the task id."""
    port = common.free_port()
    env = common.server_env(url, http_threads=args.http_threads)
    label = f"overlord serve ({backend}, {stored})"
    results: dict[str, dict[str, Any]] = {}
    with common.Server(label, serve_argv(port, url, args), port, env):
        task_id = task_id or common.submit_noop(port)
        plan = [
            ("health", HEALTH, args.connections),
            ("status", status_request(task_id), args.connections),
            ("list", LIST_COMPLETE, 1),
            ("submit", NOOP_SUBMIT, args.connections),
        ]
        measured = common.measure_round_robin(
            load, port, plan, seconds=args.seconds, warmup=args.warmup
        )
    for (endpoint, _, connections), result in zip(plan, measured.values(), strict=True):
        results[endpoint] = {
            "rps": result.rps,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "requests": result.requests,
            "errors": result.errors,
            "connections": connections,
        }
        print(
            f"  {backend:10} {stored:3} {endpoint:7} {result.rps:8.0f} rps "
            f"p50 {result.p50_ms:7.2f} ms p99 {result.p99_ms:8.2f} ms "
            f"errors {result.errors}",
            file=sys.stderr,
            flush=True,
        )
    return results, task_id


def bench_backend(
    load: LoadGenerator, backend: str, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    started = time.monotonic()
    small, large = args.small, args.large
    with common.temp_database(backend, folder) as url:
        common.migrate(url)
        fill_small = fill_complete_tasks(url, 0, small)
        at_small, task_id = phase(load, backend, url, _count(small), None, args)
        fill_large = fill_complete_tasks(url, small, large - small)
        print(
            f"  {backend:10} filled {large - small} more complete tasks in "
            f"{fill_large:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        at_large, _ = phase(load, backend, url, _count(large), task_id, args)
    return {
        "backend": backend,
        "small": small,
        "large": large,
        "fill_small_s": fill_small,
        "fill_large_s": fill_large,
        "at_small": at_small,
        "at_large": at_large,
        "elapsed_s": time.monotonic() - started,
    }


def _count(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1000 and rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def render(runs: list[dict[str, Any]]) -> str:
    lines = []
    for run in runs:
        for stored, results in (
            (_count(run["small"]), run["at_small"]),
            (_count(run["large"]), run["at_large"]),
        ):
            health = results["health"]["rps"]
            for endpoint, r in results.items():
                lines.append(
                    [
                        run["backend"],
                        stored,
                        endpoint,
                        r["connections"],
                        common.rate(r["rps"]),
                        common.ratio(r["rps"], health),
                        f"{r['p50_ms']:.2f}",
                        f"{r['p99_ms']:.2f}",
                        r["errors"],
                    ]
                )
    return common.table(
        [
            "backend",
            "tasks",
            "endpoint",
            "conns",
            "rps",
            "÷health",
            "p50 ms",
            "p99 ms",
            "errors",
        ],
        lines,
    )


def goals(runs: list[dict[str, Any]]) -> str:
    lines = []
    for run in runs:
        small, large = run["at_small"], run["at_large"]
        for stored, results in (
            (_count(run["small"]), small),
            (_count(run["large"]), large),
        ):
            health = results["health"]["rps"]
            for endpoint, label in (
                ("status", "(a) status rps ÷ health rps"),
                ("submit", "(b) submit rps ÷ health rps"),
            ):
                value = results[endpoint]["rps"] / health if health else 0.0
                lines.append(
                    [
                        run["backend"],
                        stored,
                        label,
                        f"{value:.2f}",
                        f"≥ {GOALS[endpoint]:.2f}",
                        "yes" if value >= GOALS[endpoint] else "NO",
                    ]
                )
        for percentile in ("p50_ms", "p99_ms"):
            base = small["list"][percentile]
            value = large["list"][percentile] / base if base else 0.0
            lines.append(
                [
                    run["backend"],
                    f"{_count(run['large'])}÷{_count(run['small'])}",
                    f"(c) list {percentile[:3]} latency ratio"
                    + ("" if percentile == "p50_ms" else " (info)"),
                    f"{value:.2f}",
                    f"≤ {GOALS['list']:.2f}",
                    ("yes" if value <= GOALS["list"] else "NO")
                    + ("" if percentile == "p50_ms" else " (info)"),
                ]
            )
    return common.table(["backend", "tasks", "check", "value", "goal", "met"], lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_ratios",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.common_arguments(parser)
    parser.add_argument("--http-workers", type=int, default=2, help="(%(default)s)")
    parser.add_argument(
        "--http-threads", type=int, default=8, help="per process (%(default)s)"
    )
    parser.add_argument(
        "--task-slots",
        type=int,
        default=0,
        help="serve --workers: task slots; 0 keeps task runs off the 2 cores "
        "(%(default)s)",
    )
    parser.add_argument("--small", type=int, default=1000, help="(%(default)s)")
    parser.add_argument("--large", type=int, default=1_000_000, help="(%(default)s)")
    args = parser.parse_args(argv)
    load = choose(args.load)
    backends = common.usable_backends(args.backends)
    started = time.monotonic()
    print(
        f"bench.api_ratios: overlord serve ({args.http_workers} HTTP processes x "
        f"{args.http_threads} threads, {args.task_slots} task slots), {load.name}, "
        f"{args.connections} connections (list: 1), {args.seconds:g} s per "
        f"measurement (+{args.warmup:g} s warm-up), backends {backends}",
        flush=True,
    )
    print(f"machine: {common.machine_note()}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="overlord-bench-") as folder:
        for backend in backends:
            runs.append(bench_backend(load, backend, Path(folder), args))
    elapsed = time.monotonic() - started
    print()
    print(
        "## overlord serve: rps and latency; ÷health = rps ÷ health rps of the same run"
    )
    print(render(runs))
    print()
    print("## Goals")
    print(goals(runs))
    print()
    for run in runs:
        print(
            f"{run['backend']}: {run['elapsed_s']:.0f} s in all; fill "
            f"{_count(run['small'])} {run['fill_small_s']:.1f} s, "
            f"+{_count(run['large'] - run['small'])} {run['fill_large_s']:.1f} s"
        )
    print(f"bench.api_ratios took {elapsed:.0f} s")
    document = {
        "load": load.name,
        "connections": args.connections,
        "seconds": args.seconds,
        "runs": runs,
        "elapsed_s": elapsed,
    }
    print(f"results: {common.save_results('api_ratios', document)}")
    return document


if __name__ == "__main__":
    main()

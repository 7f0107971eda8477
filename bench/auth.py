"""The cost of basic authentication on the hottest Druid call (issue 12):

GET /task/{id}/status rps with auth on (a correct Basic header, DATASOURCE READ
checked on the task's datasource) ÷ the same with auth off, same run.
goal ≥ 0.80: the PBKDF2 hash (about 10 ms at 10000 iterations) is not paid per
request, nor a database read for the user or the task's datasource.

Two ``overlord serve`` run at once on one fresh database, one with auth and one
without, and are measured in alternating 1 s slices, so other load on the machine
falls on both alike. Run: ``.venv/bin/python -m bench.auth [--backends sqlite]``.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.load import HOST, LoadGenerator, Request, Result, choose, merge
from bench.servers import status_request

GOAL = 0.80
PASSWORD = "bench-admin-password"  # noqa: S105 - a throw-away bench server


def serve_argv(port: int, url: str, args: argparse.Namespace) -> list[str]:
    return [
        common.tool("overlord"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "0",
        "--http-workers",
        str(args.http_workers),
        "--database-url",
        url,
    ]


def bench_backend(
    load: LoadGenerator, backend: str, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    with common.temp_database(backend, folder) as url:
        common.migrate(url)
        off_port, on_port = common.free_port(), common.free_port()
        off_env = common.server_env(url, http_threads=args.http_threads)
        on_env = common.server_env(
            url,
            http_threads=args.http_threads,
            # --control: both servers without auth (the pairing's own bias).
            auth_enabled="false" if args.control else "true",
            auth_initial_admin_password=PASSWORD,
        )
        with (
            common.Server(
                f"serve ({backend}, auth off)",
                serve_argv(off_port, url, args),
                off_port,
                off_env,
            ),
            common.Server(
                f"serve ({backend}, auth on)",
                serve_argv(on_port, url, args),
                on_port,
                on_env,
            ),
        ):
            task_id = common.submit_noop(off_port)
            off = status_request(task_id)
            token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            on = Request(path=off.path, authorization=f"Basic {token}")
            for port, request in ((off_port, off), (on_port, on)):
                load.run(
                    port, request, connections=args.connections, seconds=args.warmup
                )
            parts: dict[str, list[Result]] = {"off": [], "on": []}
            for _ in range(max(1, round(args.seconds))):
                for name, port, request in (
                    ("off", off_port, off),
                    ("on", on_port, on),
                ):
                    parts[name].append(
                        load.run(
                            port, request, connections=args.connections, seconds=1.0
                        )
                    )
    results = {name: merge(runs) for name, runs in parts.items()}
    for name, result in results.items():
        print(
            f"  {backend:10} auth {name:3} {result.rps:8.0f} rps "
            f"p50 {result.p50_ms:7.2f} ms p99 {result.p99_ms:8.2f} ms "
            f"errors {result.errors}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "backend": backend,
        **{
            name: {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "errors": r.errors,
            }
            for name, r in results.items()
        },
    }


def render(runs: list[dict[str, Any]]) -> str:
    lines = []
    for run in runs:
        off, on = run["off"]["rps"], run["on"]["rps"]
        value = on / off if off else 0.0
        lines.append(
            [
                run["backend"],
                common.rate(off),
                common.rate(on),
                f"{run['on']['p50_ms']:.2f}",
                f"{value:.2f}",
                f"≥ {GOAL:.2f}",
                "yes" if value >= GOAL else "NO",
                run["off"]["errors"] + run["on"]["errors"],
            ]
        )
    return common.table(
        [
            "backend",
            "status rps off",
            "status rps on",
            "p50 ms on",
            "on ÷ off",
            "goal",
            "met",
            "errors",
        ],
        lines,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.auth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.common_arguments(parser)
    parser.add_argument("--http-workers", type=int, default=1, help="(%(default)s)")
    parser.add_argument(
        "--http-threads", type=int, default=8, help="per process (%(default)s)"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="run the 'on' server without auth too: the ratio of two equal servers",
    )
    args = parser.parse_args(argv)
    load = choose(args.load)
    backends = common.usable_backends(args.backends)
    started = time.monotonic()
    print(
        f"bench.auth: GET /task/{{id}}/status with auth on ÷ off, {load.name}, "
        f"{args.connections} connections, {args.seconds:g} s each "
        f"(+{args.warmup:g} s warm-up), backends {backends}",
        flush=True,
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="overlord-bench-") as folder:
        for backend in backends:
            runs.append(bench_backend(load, backend, Path(folder), args))
    print()
    print(render(runs))
    document = {"runs": runs, "elapsed_s": time.monotonic() - started}
    path = common.save_results("auth", document)
    print(f"\nresults: {path}")
    return document


if __name__ == "__main__":
    main()

"""``make bench``: bench.servers, bench.api_ratios, bench.runtime, then bench.ingest
(SQLite only), each printing its tables.

Arguments are passed to both (``--seconds``, ``--warmup``, ``--connections``,
``--load``, ``--backends``); each keeps its own defaults otherwise. Run:
``.venv/bin/python -m bench.run_all [--seconds 5] [--backends sqlite,postgresql]``.
"""

from __future__ import annotations

import argparse
import time

from bench import api_ratios, common, ingest, runtime, servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all", description=__doc__
    )
    common.common_arguments(parser)
    args = parser.parse_args(argv)
    shared = [
        f"--backends={args.backends}",
        f"--seconds={args.seconds}",
        f"--warmup={args.warmup}",
        f"--connections={args.connections}",
        f"--load={args.load}",
    ]
    started = time.monotonic()
    print("# bench.servers: granian vs gunicorn\n", flush=True)
    first = servers.main(shared)
    print("\n# bench.api_ratios: overlord serve's goals\n", flush=True)
    second = api_ratios.main(shared)
    print("\n# bench.runtime: dispatch latency and noop tasks/s\n", flush=True)
    runtime_started = time.monotonic()
    runtime.main([f"--backends={args.backends}"])
    runtime_s = time.monotonic() - runtime_started
    print("\n# bench.ingest: 1 M JSON rows through an index task\n", flush=True)
    ingest_started = time.monotonic()
    ingest.main([])
    print(
        f"\nbench.run_all took {time.monotonic() - started:.0f} s "
        f"(servers {first['elapsed_s']:.0f} s, api_ratios {second['elapsed_s']:.0f} s, "
        f"runtime {runtime_s:.0f} s, ingest {time.monotonic() - ingest_started:.0f} s)"
    )


if __name__ == "__main__":
    main()

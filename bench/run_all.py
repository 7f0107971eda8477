"""``make bench``: bench.servers, bench.issue10 (issue 10's table, with
bench.runtime's noop figures inside it), then bench.ingest (SQLite only), each
printing its tables. ``bench.api_ratios`` still runs alone.

Arguments are passed to both (``--seconds``, ``--warmup``, ``--connections``,
``--load``, ``--backends``); each keeps its own defaults otherwise. Run:
``.venv/bin/python -m bench.run_all [--seconds 5] [--backends sqlite,postgresql]``.
"""

from __future__ import annotations

import argparse
import time

from bench import common, ingest, issue10, servers


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
    print("\n# bench.issue10: issue 10's table\n", flush=True)
    # MariaDB gives the status and submit rows when it is reachable.
    backends = args.backends
    if "mariadb" not in backends and common.backend_available("mariadb") is None:
        backends += ",mariadb"
    second = issue10.main(
        [
            f"--backends={backends}",
            f"--seconds={args.seconds}",
            f"--warmup={args.warmup}",
            f"--connections={args.connections}",
            f"--load={args.load}",
        ]
    )
    print("\n# bench.ingest: 1 M JSON rows through an index task\n", flush=True)
    ingest_started = time.monotonic()
    ingest.main([])
    print(
        f"\nbench.run_all took {time.monotonic() - started:.0f} s "
        f"(servers {first['elapsed_s']:.0f} s, issue10 {second['elapsed_s']:.0f} s, "
        f"ingest {time.monotonic() - ingest_started:.0f} s)"
    )


if __name__ == "__main__":
    main()

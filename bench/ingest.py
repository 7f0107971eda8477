"""The ingestion engine's rows/s against a same-run baseline.

Baseline: pyarrow alone parses the same newline-delimited JSON file
(``pyarrow.json.read_json``) and writes the same columns as one Parquet file
(``pyarrow.parquet.write_table``): the least any engine built on pyarrow must do.
Engine: ``overlord.ingest.Ingestion`` on that file with a wikipedia-tutorial-shaped
spec (ISO timestamps, three string dimensions, count + two longSum metrics, DAY
segments, no rollup so both write every row). Issue 9's goal: engine >= 0.5 x baseline.

    .venv/bin/python -m bench.ingest --rows 1000000 --repeat 3

Each side runs ``--repeat`` times alternately; the best run of each is compared (the
machine is shared, so the minimum is the least noisy figure).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time

import pyarrow.json as pjson
import pyarrow.parquet as pq

from overlord.ingest import Ingestion, IngestSpec

CHANNELS = [f"#{c}.wikipedia" for c in ("en", "fr", "de", "ja", "ru", "es", "it")]


def make_input(path: str, rows: int, seed: int = 9) -> None:
    """``rows`` wikipedia-like JSON lines over two days, in time order."""
    rng = random.Random(seed)
    start = 1_704_067_200  # 2024-01-01T00:00:00Z
    step = 2 * 86_400 / rows
    with open(path, "w", encoding="utf-8") as out:
        for index in range(rows):
            second = start + int(index * step)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            out.write(
                json.dumps(
                    {
                        "time": stamp,
                        "channel": rng.choice(CHANNELS),
                        "page": f"Page {rng.randrange(50_000)}",
                        "user": f"user{rng.randrange(5_000)}",
                        "added": rng.randrange(2_000),
                        "deleted": rng.randrange(200),
                    }
                )
                + "\n"
            )


def spec(path: str) -> IngestSpec:
    return IngestSpec.from_json(
        {
            "dataSchema": {
                "dataSource": "wikipedia",
                "timestampSpec": {"column": "time", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "longSum", "name": "added", "fieldName": "added"},
                    {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
                ],
                "granularitySpec": {
                    "segmentGranularity": "day",
                    "queryGranularity": "none",
                    "rollup": False,
                },
            },
            "ioConfig": {
                "inputSource": {"type": "local", "files": [path]},
                "inputFormat": {"type": "json"},
            },
        }
    )


def baseline(path: str, out_dir: str) -> float:
    began = time.perf_counter()
    table = pjson.read_json(path)
    pq.write_table(table, os.path.join(out_dir, "baseline.parquet"))
    return time.perf_counter() - began


def engine(path: str, out_dir: str, run: int) -> float:
    began = time.perf_counter()
    segments = Ingestion(spec(path), storage=out_dir, version=f"v{run}").run()
    elapsed = time.perf_counter() - began
    assert segments, "the engine wrote no segment"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as work:
        path = os.path.join(work, "input.json")
        make_input(path, args.rows)
        size = os.path.getsize(path)
        base_times, engine_times = [], []
        for run in range(args.repeat):
            base_times.append(baseline(path, work))
            engine_times.append(engine(path, work, run))
        base, mine = min(base_times), min(engine_times)
        print(
            f"input: {args.rows} rows, {size / 1e6:.1f} MB JSON; best of {args.repeat}"
        )
        print(
            f"baseline (pyarrow read_json + write_table): {args.rows / base:,.0f} rows/s"
        )
        print(
            f"engine   (overlord.ingest.Ingestion):       {args.rows / mine:,.0f} rows/s"
        )
        print(f"ratio engine/baseline: {base / mine:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()

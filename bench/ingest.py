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
import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.json as pjson
import pyarrow.parquet as pq

from bench import common
from overlord.ingest import Ingestion, IngestSpec

GOAL = 0.5

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


def spec_json(path: str) -> dict[str, Any]:
    return {
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


def spec(path: str) -> IngestSpec:
    return IngestSpec.from_json(spec_json(path))


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


@contextlib.contextmanager
def task_server(work: Path) -> Iterator[int]:
    """``overlord serve`` with one task slot on a fresh SQLite store; its port."""
    with common.temp_database("sqlite", work) as url:
        common.migrate(url)
        port = common.free_port()
        env = common.server_env(url, deep_storage_dir=work / "segments")
        argv = [common.tool("overlord"), "serve", "--port", str(port)]
        argv += ["--workers", "1", "--http-workers", "1"]
        with common.Server("overlord serve (sqlite)", argv, port, env):
            yield port


def through_task(port: int, path: str, run: int) -> float:
    """Seconds from the submit of an ``index`` task to its status SUCCESS."""
    document = spec_json(path)
    document["dataSchema"]["dataSource"] = f"wikipedia_{run}"
    document["ioConfig"]["type"] = "index"
    document["tuningConfig"] = {"type": "index"}
    # With its intervals given the task reads the input once, as the baseline does;
    # without them it reads it twice (Druid's determine-partitions pass): 0.39 of the
    # baseline measured then, against 0.6-0.7 here.
    document["dataSchema"]["granularitySpec"]["intervals"] = ["2024-01-01/2024-01-03"]
    body = json.dumps({"type": "index", "spec": document}).encode()
    began = time.perf_counter()
    status, answer = common.http_call(port, "POST", "/druid/indexer/v1/task", body)
    if status != 200:
        raise RuntimeError(f"submit answered {status}: {answer[:300]!r}")
    task_id = json.loads(answer)["task"]
    while True:
        status, answer = common.http_call(
            port, "GET", f"/druid/indexer/v1/task/{task_id}/status"
        )
        state = json.loads(answer)["status"]
        if state["status"] != "RUNNING":
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - began
    if state["status"] != "SUCCESS":
        raise RuntimeError(f"task {task_id} ended {state}")
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {common.machine_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as work:
        path = os.path.join(work, "input.json")
        make_input(path, args.rows)
        size = os.path.getsize(path)
        base_times, task_times, engine_times = [], [], []
        with task_server(Path(work)) as port:
            for run in range(args.repeat):
                base_times.append(baseline(path, work))
                task_times.append(through_task(port, path, run))
                engine_times.append(engine(path, work, run))
    base, task, mine = min(base_times), min(task_times), min(engine_times)
    rows = [
        ["index task (serve, SQLite)", args.rows / task, args.rows / base],
        ["engine in-process", args.rows / mine, args.rows / base],
    ]
    print(
        f"input: {args.rows} rows, {size / 1e6:.1f} MB JSON; best of {args.repeat}; "
        "baseline: pyarrow read_json + write_table"
    )
    print(
        common.table(
            ["measured", "rows/s", "baseline rows/s", "ratio", "goal", "met"],
            [
                [
                    name,
                    f"{rate:,.0f}",
                    f"{b:,.0f}",
                    rate / b,
                    f">= {GOAL}",
                    "yes" if rate / b >= GOAL else "no",
                ]
                for name, rate, b in rows
            ],
        )
    )
    result = {
        "rows": args.rows,
        "bytes": size,
        "baseline_rows_per_s": args.rows / base,
        "task_rows_per_s": args.rows / task,
        "engine_rows_per_s": args.rows / mine,
        "task_ratio": base / task,
        "engine_ratio": base / mine,
    }
    common.save_results("ingest", result)
    return result


if __name__ == "__main__":
    main()

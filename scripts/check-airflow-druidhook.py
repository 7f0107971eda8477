"""Run Airflow's real DruidHook against a running overlord (not part of `make test`:
Airflow is a large install). Usage, with a venv holding
apache-airflow-providers-apache-druid:

    python scripts/check-airflow-druidhook.py http://127.0.0.1:8090 USER PASSWORD DATA_DIR

DATA_DIR is a directory the server can read; a two-line JSON file is written there.
Checks: an index_parallel spec (2 concurrent sub-tasks) reaches SUCCESS through
submit_indexing_job, and a noop longer than max_ingestion_time is shut down by the
hook (FAILED "Shutdown request from user").
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit


def main() -> None:
    url, user, password, data_dir = sys.argv[1:5]
    parts = urlsplit(url)
    os.environ["AIRFLOW_CONN_DRUID_INGEST_DEFAULT"] = json.dumps(
        {
            "conn_type": "druid",
            "host": parts.hostname,
            "port": parts.port,
            "schema": parts.scheme,
            "login": user,
            "password": password,
            "extra": {"endpoint": "druid/indexer/v1/task"},
        }
    )
    from airflow.providers.apache.druid.hooks.druid import DruidHook

    Path(data_dir, "druidhook.json").write_text(
        '{"ts":"2024-01-01T01:00:00Z","page":"a","n":1}\n'
        '{"ts":"2024-01-01T02:00:00Z","page":"b","n":2}\n'
    )
    spec = {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": "druidhook_check",
                "timestampSpec": {"column": "ts", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["page"]},
                "metricsSpec": [{"type": "longSum", "name": "n", "fieldName": "n"}],
                "granularitySpec": {"segmentGranularity": "day", "rollup": False},
            },
            "ioConfig": {
                "type": "index_parallel",
                "inputSource": {
                    "type": "local",
                    "baseDir": str(Path(data_dir).resolve()),
                    "filter": "druidhook.json",
                },
                "inputFormat": {"type": "json"},
            },
            "tuningConfig": {"type": "index_parallel", "maxNumConcurrentSubTasks": 2},
        },
    }
    # The operator hands the hook a JSON string (a dict would be form-encoded).
    DruidHook(timeout=1).submit_indexing_job(json.dumps(spec))
    print("index_parallel: SUCCESS")
    try:
        DruidHook(timeout=1, max_ingestion_time=2).submit_indexing_job(
            json.dumps(
                {"type": "noop", "dataSource": "druidhook_check", "runTime": 60000}
            )
        )
    except Exception as error:  # the hook shuts the task down, then raises
        print(f"noop past max_ingestion_time: {type(error).__name__}: {error}")
    else:
        raise SystemExit("the hook did not stop the long noop")


if __name__ == "__main__":
    main()

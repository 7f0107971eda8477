"""``GET /metrics`` of a real ``overlord serve`` with two HTTP worker processes and
an embedded worker: request counters summed over every process, task events
recorded by the worker (a success, and a task shut down while it ran), and no
``_created`` series."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from overlord.db import Database
from overlord.states import RunnerState
from overlord.store.models import Worker as WorkerRow
from overlord.timeutil import utcnow
from tests.factories import make_complete_task, make_task
from tests.processes import ServeProcess, serve_process, wait_for

BASE = "/druid/indexer/v1"


def scrape(
    server: ServeProcess,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{server.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_merge_http_workers_and_the_embedded_worker(
    database_url: str, tmp_path: Path
) -> None:
    with serve_process(
        database_url,
        tmp_path,
        "--workers",
        "1",
        "--http-workers",
        "2",
    ) as server:
        server.wait_healthy()
        session = requests.Session()
        for _ in range(20):  # new connections spread over both HTTP workers
            assert requests.get(f"{server.base_url}/status", timeout=10).ok
        task_id = session.post(
            f"{server.base_url}{BASE}/task",
            json={"type": "noop", "dataSource": "wiki edits", "runTime": 1},
            timeout=10,
        ).json()["task"]

        def ended() -> dict | None:  # type: ignore[type-arg]
            samples = scrape(server)
            count = value(
                samples,
                "overlord_task_run_seconds_count",
                type="noop",
                status="SUCCESS",
            )
            return samples if count else None

        samples = wait_for(ended, 60, describe=lambda: str(scrape(server)))

        # A task shut down while it runs: its end is the shutdown's, FAILED; the
        # worker's own compare-and-set then changes nothing, and it counts the
        # task once, as FAILED.
        long_id = session.post(
            f"{server.base_url}{BASE}/task",
            json={"type": "noop", "dataSource": "wiki edits", "runTime": 60000},
            timeout=10,
        ).json()["task"]

        def running() -> bool:
            status = session.get(
                f"{server.base_url}{BASE}/task/{long_id}/status", timeout=10
            ).json()["status"]
            return status["runnerStatusCode"] == "RUNNING"

        wait_for(running, 60)
        assert session.post(
            f"{server.base_url}{BASE}/task/{long_id}/shutdown", timeout=10
        ).ok

        def failed() -> dict | None:  # type: ignore[type-arg]
            samples = scrape(server)
            count = value(
                samples, "overlord_task_run_seconds_count", type="noop", status="FAILED"
            )
            return samples if count else None

        after = wait_for(failed, 60, describe=lambda: str(scrape(server)))

    assert (
        value(
            samples,
            "overlord_http_requests_total",
            route="/status",
            method="GET",
            status="200",
        )
        == 20
    )
    assert (
        value(samples, "overlord_task_run_seconds_count", type="noop", status="SUCCESS")
        == 1
    )
    assert value(samples, "overlord_task_dispatch_seconds_count") == 1
    # Druid's prometheus-emitter names, label values sanitised as it does.
    assert (
        value(samples, "druid_task_success_count_total", dataSource="wiki_edits") == 1
    )
    assert (
        value(
            samples,
            "druid_task_run_time_count",
            dataSource="wiki_edits",
            taskType="noop",
        )
        == 1
    )
    assert (
        value(
            samples,
            "druid_task_pending_time_count",
            dataSource="wiki_edits",
            taskType="noop",
        )
        == 1
    )
    assert (
        value(after, "overlord_task_run_seconds_count", type="noop", status="FAILED")
        == 1
    )
    assert value(after, "druid_task_failed_count_total", dataSource="wiki_edits") == 1
    assert (
        value(after, "overlord_task_run_seconds_count", type="noop", status="SUCCESS")
        == 1
    )
    assert value(after, "overlord_task_dispatch_seconds_count") == 2
    assert value(samples, "overlord_workers") == 1
    assert value(samples, "overlord_worker_slots") == 1
    assert value(samples, "overlord_tasks", state="RUNNING", type="noop") == 0
    assert not any(name.endswith("_created") for name, _ in samples)
    assert task_id.startswith("noop_")


RUNNING = 'druid_task_running_count_total{dataSource="wiki_edits",taskType="index"}'
# The series each emission adds to, and what it adds (the test's snapshot).
SNAPSHOT = [
    (RUNNING, 1),
    ('druid_task_pending_count_total{dataSource="books",taskType="kill"}', 1),
    ('druid_task_waiting_count_total{dataSource="books",taskType="noop"}', 2),
    ('druid_taskslot_total_count_total{category="_default_worker_category"}', 2),
    ('druid_taskslot_idle_count_total{category="_default_worker_category"}', 1),
    ('druid_taskslot_used_count_total{category="_default_worker_category"}', 1),
    # A disabled worker's slots count in total, never as idle (Druid's rule).
    ('druid_taskslot_total_count_total{category="ssd_tier"}', 1),
    ('druid_taskslot_idle_count_total{category="ssd_tier"}', 0),
    ('druid_taskslot_used_count_total{category="ssd_tier"}', 0),
]


def _druid_count_lines(text: str) -> list[str]:
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(("druid_task_running", "druid_task_pending"))
        or line.startswith(("druid_task_waiting", "druid_taskslot_"))
    )


def test_serve_adds_druid_task_and_slot_counts_every_emission_period(
    database_url: str, tmp_path: Path, db: Database
) -> None:
    now = utcnow()
    with db.transaction(write=True) as session:
        # Another host's worker (its heartbeat fresh for the whole test) runs one
        # task in one of its two slots; a disabled worker of a second category.
        for worker_id, category, capacity, enabled in (
            ("elsewhere", "_default_worker_category", 2, True),
            ("drained", "ssd tier", 1, False),
        ):
            session.add(
                WorkerRow(
                    id=worker_id,
                    host="h",
                    port=8091,
                    capacity=capacity,
                    version="0",
                    category=category,
                    enabled=enabled,
                    started_at=now,
                    last_heartbeat_at=now,
                    last_completed_task_at=None,
                )
            )
        make_task(
            session,
            type="index",
            datasource="wiki edits",
            runner_status=RunnerState.RUNNING,
            worker_id="elsewhere",
            started_at=now,
            lease_expires_at=now + dt.timedelta(hours=1),
        )
        # serve runs no slots (--workers 0): a ready task stays PENDING.
        make_task(
            session,
            type="kill",
            datasource="books",
            runner_status=RunnerState.PENDING,
            queue_inserted_at=now,
        )
        for _ in range(2):  # never ready: they stay WAITING
            make_task(
                session,
                datasource="books",
                payload=json.dumps({"type": "noop", "isReadyResult": "NO"}),
            )
        make_complete_task(session, datasource="books")  # ended: never counted

    with serve_process(
        database_url,
        tmp_path,
        "--workers",
        "0",
        env={
            "OVERLORD_METRICS_EMISSION_PERIOD": "PT0.2S",
            "OVERLORD_TASK_LEASE": "PT10M",
        },
    ) as server:
        server.wait_healthy()

        def counted() -> list[str] | None:
            # N emission periods so far, each adding the same snapshot; a scrape
            # in the middle of an emission is taken again.
            text = requests.get(f"{server.base_url}/metrics", timeout=10).text
            lines = _druid_count_lines(text)
            running = [line for line in lines if line.startswith(RUNNING)]
            if not running:
                return None
            periods = float(running[0].rsplit(" ", 1)[1])
            expected = sorted(
                f"{series} {per_period * periods}" for series, per_period in SNAPSHOT
            )
            return lines if periods >= 3 and lines == expected else None

        wait_for(
            counted,
            30,
            describe=lambda: (
                "\n".join(
                    _druid_count_lines(
                        requests.get(f"{server.base_url}/metrics", timeout=10).text
                    )
                )
                + server.output()
            ),
        )

"""``GET /metrics`` of a real ``overlord serve`` with two HTTP worker processes and
an embedded worker: request counters summed over every process, task events
recorded by the worker (a success, and a task shut down while it ran), and no
``_created`` series."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

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

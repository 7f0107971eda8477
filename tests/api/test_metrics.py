"""``GET /metrics``: request metrics by route template, task gauges read from the
store at scrape time, the access log line, and JSON log lines."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from overlord.logs import JsonFormatter, configure

BASE = "/druid/indexer/v1"
STATUS_ROUTE = "/druid/indexer/v1/task/<path:task_id>/status"


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_method_and_status(
    client: FlaskClient,
) -> None:
    before = scrape(client)

    for _ in range(3):
        assert client.get("/status/health").status_code == 200
    assert client.get(f"{BASE}/task/no_such_task/status").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        delta(
            "overlord_http_requests_total",
            route="/status/health",
            method="GET",
            status="200",
        )
        == 3
    )
    assert (
        delta(
            "overlord_http_requests_total",
            route=STATUS_ROUTE,
            method="GET",
            status="404",
        )
        == 1
    )
    assert (
        delta(
            "overlord_http_requests_total",
            route="<unmatched>",
            method="GET",
            status="404",
        )
        == 1
    )
    assert (
        delta(
            "overlord_http_request_duration_seconds_count",
            route="/status/health",
            method="GET",
        )
        == 3
    )
    # The previous scrape itself is counted too; a task id never is a label.
    assert (
        delta(
            "overlord_http_requests_total", route="/metrics", method="GET", status="200"
        )
        == 1
    )
    assert not any("no_such_task" in str(key) for key in after)


def test_task_gauges_come_from_the_store_at_scrape_time(client: FlaskClient) -> None:
    ids = [
        client.post(f"{BASE}/task", json={"type": "noop", "dataSource": "wiki"}).json[
            "task"
        ]
        for _ in range(2)
    ]
    runner = {
        client.get(f"{BASE}/task/{task_id}/status").json["status"]["runnerStatusCode"]
        for task_id in ids
    }
    assert len(runner) == 1
    (state,) = runner

    samples = scrape(client)

    assert value(samples, "overlord_tasks", state=state, type="noop") == 2
    assert value(samples, "overlord_task_queue_depth") == (
        2 if state == "PENDING" else 0
    )
    # No worker runs in this app: no slot anywhere.
    assert value(samples, "overlord_workers") == 0
    assert value(samples, "overlord_worker_slots") == 0
    assert value(samples, "overlord_worker_slots_free") == 0

    client.post(f"{BASE}/task/{ids[0]}/shutdown")
    assert value(scrape(client), "overlord_tasks", state=state, type="noop") == 1


def test_access_log_line_names_route_status_task_and_opaque_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="overlord.access"):
        client.get(f"{BASE}/task/abc/status", headers={"X-Opaque-Id": "job-7"})

    (record,) = [r for r in caplog.records if r.name == "overlord.access"]
    message = record.getMessage()
    assert message.startswith(f"GET {STATUS_ROUTE} 404 ")
    assert message.endswith("ms task=abc opaque_id=job-7")
    assert record.task_id == "abc"  # type: ignore[attr-defined]
    assert record.opaque_id == "job-7"  # type: ignore[attr-defined]
    assert record.status == 404  # type: ignore[attr-defined]


def test_json_log_lines_carry_the_extra_fields() -> None:
    formatter = JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )
    record = logging.LogRecord(
        "overlord.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None
    )
    record.task_id = "t1"
    record.opaque_id = None

    line = json.loads(formatter.format(record))

    assert set(line) == {"time", "level", "logger", "message", "task_id", "opaque_id"}
    assert line["level"] == "INFO"
    assert line["logger"] == "overlord.access"
    assert line["message"] == "GET /x"
    assert line["task_id"] == "t1"
    assert line["opaque_id"] is None


def test_configure_logging_installs_one_json_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)

    configure("DEBUG", "json")
    configure("INFO", "text")  # a second call changes nothing

    (handler,) = root.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert root.level == logging.DEBUG

"""The log lines about a task, written by a real worker and its task processes,
carry the task id and the X-Opaque-Id of the task's submit (JSON log format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from overlord.db import Database
from tests.factories import make_task
from tests.worker.conftest import BASE, Processes, status, wait_for


def _lines(tmp_path: Path) -> list[dict[str, Any]]:
    """The JSON lines of the worker's log (its task processes write there too)."""
    lines = []
    for path in sorted(tmp_path.glob("worker-*.log")):
        for text in path.read_text(errors="replace").splitlines():
            if text.startswith("{"):
                lines.append(json.loads(text))
    return lines


def _about(tmp_path: Path, task_id: str) -> list[dict[str, Any]]:
    return [line for line in _lines(tmp_path) if line.get("task_id") == task_id]


def _submit(client: FlaskClient, spec: dict[str, Any], opaque_id: str | None) -> str:
    headers = {"X-Opaque-Id": opaque_id} if opaque_id is not None else {}
    response = client.post(f"{BASE}/task", json=spec, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.json["task"])  # type: ignore[index]


def test_worker_and_task_process_lines_carry_task_id_and_opaque_id(
    client: FlaskClient, processes: Processes, db: Database, tmp_path: Path
) -> None:
    processes.worker(2, OVERLORD_LOG_FORMAT="json")
    done = _submit(client, {"type": "noop", "runTime": 1}, "job-7 %s")
    anonymous = _submit(client, {"type": "noop", "runTime": 1}, None)
    wait_for(
        lambda: all(
            status(client, task_id)["statusCode"] == "SUCCESS"
            for task_id in (done, anonymous)
        ),
        30,
        describe=processes.logs,
    )
    long = _submit(client, {"type": "noop", "runTime": 60000}, "job-8")
    wait_for(
        lambda: status(client, long)["runnerStatusCode"] == "RUNNING",
        30,
        describe=processes.logs,
    )
    assert client.post(f"{BASE}/task/{long}/shutdown").status_code == 200
    # A task whose code raises: its own process logs the failure. (Submit refuses
    # such a payload; a stored row still runs.)
    with db.transaction(write=True) as session:
        make_task(
            session,
            task_id="broken",
            payload=json.dumps({"type": "noop", "id": "broken", "runTime": "x"}),
            request_headers=json.dumps({"X-Opaque-Id": "job-9"}),
        )

    def ended() -> bool:
        messages = [line["message"] for line in _lines(tmp_path)]
        return any(
            m.startswith(f"task {long} process ended") for m in messages
        ) and any(m.startswith("task broken ended with") for m in messages)

    wait_for(ended, 30, describe=processes.logs)

    def summary(task_id: str) -> list[tuple[str, str, str | None, str]]:
        return [
            (line["logger"], line["level"], line["opaque_id"], line["message"])
            for line in _about(tmp_path, task_id)
        ]

    worker = "overlord.worker.loop"
    [started] = [
        line for line in _about(tmp_path, done) if "started" in line["message"]
    ]
    assert summary(done) == [
        (worker, "INFO", "job-7 %s", started["message"]),
        (
            worker,
            "INFO",
            "job-7 %s",
            f"task {done} ended with status SUCCESS opaque_id=job-7 %s",
        ),
    ]
    assert started["message"].startswith(f"task {done} started in process ")
    assert started["message"].endswith(" opaque_id=job-7 %s")
    # Without the header: the field is null and the message has no suffix, as in
    # the access log.
    assert [
        (opaque, message.split(" in process ")[0])
        for _, _, opaque, message in summary(anonymous)
    ] == [
        (None, f"task {anonymous} started"),
        (None, f"task {anonymous} ended with status SUCCESS"),
    ]
    assert [message for *_, message in summary(long)][1:] == [
        f"task {long} is no longer active: stopping its process opaque_id=job-8",
        f"task {long} process ended; the task was already final opaque_id=job-8",
    ]
    assert {opaque for _, _, opaque, _ in summary(long)} == {"job-8"}
    assert summary("broken")[1:] == [
        (
            "overlord.services.execution",
            "WARNING",
            "job-9",
            "task broken failed: TypeError: unsupported operand type(s) for /: "
            "'str' and 'int' opaque_id=job-9",
        ),
        (
            worker,
            "INFO",
            "job-9",
            "task broken ended with status FAILED opaque_id=job-9",
        ),
    ]

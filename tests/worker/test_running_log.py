"""A real worker's claim writes the task log's first line in the claim's own
transaction: the first time a task shows RUNNING, its log already answers 200."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.worker.conftest import BASE, Processes, status, submit, wait_for


def test_log_answers_from_the_first_moment_a_task_is_running(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(1)
    task_id = submit(client, {"type": "noop", "dataSource": "wiki", "runTime": 60000})

    running = wait_for(
        lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING",
        30,
        interval=0.01,
        describe=processes.logs,
    )
    response = client.get(f"{BASE}/task/{task_id}/log")
    client.post(f"{BASE}/task/{task_id}/shutdown")

    assert running
    assert response.status_code == 200
    first_line = response.get_data(as_text=True).splitlines()[0]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO \["
        + re.escape(task_id)
        + r"\] Task is RUNNING on worker\[[^\]:]+:\d+:[0-9a-f]{8}\] "
        r"at location\[[^\]:]+:-?\d+\]",
        first_line,
    ), first_line

"""A task whose spec nests as deep as Jackson allows (1000 levels) is accepted and
then really runs: the worker's scheduler and the task's process decode its payload
without hitting Python's recursion limit (issue 8)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.worker.conftest import BASE, Processes, status, wait_for


def test_task_nesting_1000_deep_runs_to_success(
    client: FlaskClient, processes: Processes
) -> None:
    # The body object is level 1, context 2, the arrays 3…1000.
    deep = "[" * 998 + "]" * 998
    body = '{"type":"noop","id":"deep","runTime":1,"context":{"a":' + deep + "}}"
    response = client.post(
        f"{BASE}/task", data=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json) == (200, {"task": "deep"})

    processes.worker(1)

    wait_for(
        lambda: status(client, "deep")["statusCode"] in ("SUCCESS", "FAILED"),
        60,
        describe=processes.logs,
    )
    final = status(client, "deep")
    assert (final["statusCode"], final["errorMsg"]) == ("SUCCESS", None)

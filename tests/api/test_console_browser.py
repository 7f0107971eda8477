"""The ``/console`` page in headless Chromium (Debian's, driven by Playwright): a
noop submitted through the API shows in the table, opens, and is shut down
through the page's button; the pending-segment view lists and refuses a delete as
the API does; a screenshot is kept as a test artifact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Dialog, Page, expect, sync_playwright

from tests.processes import ServeProcess, serve_process, wait_for

API = "/druid/indexer/v1"
CHROMIUM = "/usr/bin/chromium"
# Where the screenshot lands (CI keeps the directory if it wants it).
ARTIFACTS = Path(
    os.environ.get(
        "TEST_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "test-artifacts"
    )
)


def _status(server: ServeProcess, task_id: str) -> dict[str, Any]:
    response = requests.get(f"{server.base_url}{API}/task/{task_id}/status", timeout=10)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()["status"]
    return status


def _allocate(server: ServeProcess, task_id: str) -> str:
    response = requests.post(
        f"{server.base_url}{API}/action",
        json={
            "task": {"type": "noop", "id": task_id, "dataSource": "wiki"},
            "action": {
                "type": "segmentAllocate",
                "dataSource": "wiki",
                "timestamp": "2024-01-01T05:00:00.000Z",
                "queryGranularity": {"type": "none"},
                "preferredSegmentGranularity": "DAY",
                "sequenceName": "seq_0",
                "previousSegmentId": None,
                "skipSegmentLineageCheck": False,
                "shardSpecFactory": {"type": "numbered"},
                "lockGranularity": "TIME_CHUNK",
                "taskLockType": "EXCLUSIVE",
            },
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    return f"wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_{result['version']}"


@pytest.fixture
def page() -> Any:
    assert shutil.which(CHROMIUM), "make test installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def test_console_lists_opens_and_shuts_down_a_task(
    database_url: str, tmp_path: Path, page: Page
) -> None:
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    with serve_process(database_url, tmp_path, "--workers", "1") as server:
        server.wait_healthy()
        task_id = requests.post(
            f"{server.base_url}{API}/task",
            json={"type": "noop", "dataSource": "wiki", "runTime": 60000},
            timeout=10,
        ).json()["task"]
        wait_for(lambda: _status(server, task_id)["runnerStatusCode"] == "RUNNING", 60)
        segment_id = _allocate(server, task_id)

        page.goto(f"{server.base_url}/console")
        row = page.locator(f'tr.task[data-id="{task_id}"]')
        expect(row).to_be_visible()
        expect(row.locator("td.status")).to_have_text("RUNNING")
        expect(row.locator("td").nth(1)).to_have_text("noop")
        expect(row.locator("td").nth(2)).to_have_text("wiki")

        row.click()
        expect(page.locator("#detail-id")).to_have_text(task_id)
        expect(page.locator("#detail-status")).to_have_text("RUNNING")
        expect(page.locator("#detail-payload")).to_contain_text('"runTime": 60000')
        expect(page.locator("#detail-log")).to_contain_text("Task is RUNNING on worker")

        # Pending segments: listed, and a delete the API refuses shows its text.
        page.get_by_role("button", name="Pending segments").click()
        page.fill("#pending-datasource", "wiki")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#pending tr")).to_have_count(1)
        expect(page.locator("#pending tr td").first).to_have_text(segment_id)
        page.get_by_role("button", name="Delete pending segments").click()
        expect(page.locator("#message")).to_contain_text(
            "HTTP 400: Cannot delete pendingSegments for datasource[wiki] as there is "
            f"at least one active task[{task_id}]"
        )

        page.get_by_role("button", name="Workers").click()
        expect(page.locator("#workers tr")).to_have_count(1)
        expect(page.locator("#workers tr td").nth(2)).to_have_text("1")

        page.get_by_role("button", name="Tasks").click()
        page.locator("#detail-shutdown").click()
        # The console shows a user's shutdown as CANCELED (TASK_CANCELED_ERROR_MESSAGES).
        expect(page.locator("#detail-status")).to_have_text("CANCELED")
        expect(row.locator("td.status")).to_have_text("CANCELED")
        expect(page.locator("#detail-shutdown")).to_be_hidden()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "console.png", full_page=True)
        status = _status(server, task_id)

    assert dialogs == [
        "Delete the pending segments of wiki created in 1000-01-01/3000-01-01?",
        f"Shut down task {task_id}?",
    ]
    assert status["statusCode"] == "FAILED"
    assert status["errorMsg"] == "Shutdown request from user"
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000

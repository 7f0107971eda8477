"""A small HTTP client of a running overlord (or of a real Druid Overlord): what the
``overlord submit|tasks|status|log|shutdown|…`` commands call.

Nothing here touches the store: the commands work against any server speaking the
Druid task API, on this host or another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import requests

API = "/druid/indexer/v1"
# Long enough for a loaded server, short enough that a wedged one is reported.
TIMEOUT_SECONDS = 30.0


class RemoteError(Exception):
    """Anything that makes a request fail, as one line for the user."""


@dataclass(frozen=True)
class Remote:
    url: str
    auth: tuple[str, str] | None = None
    verify: bool | str = True

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        # Imported here: `overlord serve` and `worker` import this module through
        # the command group and need no HTTP client.
        import requests

        target = self.url.rstrip("/") + path
        try:
            response = requests.request(
                method,
                target,
                params=params,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Content-Type": "application/json"}
                if body is not None
                else {},
                auth=self.auth,
                verify=self.verify,
                timeout=TIMEOUT_SECONDS,
            )
        except requests.exceptions.SSLError as error:
            raise RemoteError(
                f"TLS error talking to {self.url}: {_reason(error)}"
            ) from error
        except requests.exceptions.ConnectionError as error:
            raise RemoteError(
                f"cannot reach overlord at {self.url}: {_reason(error)}"
            ) from error
        except requests.exceptions.Timeout as error:
            raise RemoteError(
                f"overlord at {self.url} did not answer within {TIMEOUT_SECONDS:.0f} s"
            ) from error
        except requests.exceptions.RequestException as error:
            raise RemoteError(f"request to {target} failed: {error}") from error
        if response.status_code not in ok:
            raise RemoteError(error_text(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as error:
            raise RemoteError(
                f"HTTP {response.status_code} from {path} is not JSON: "
                f"{_excerpt(response.text)}"
            ) from error

    # --- the Druid task API -----------------------------------------------------

    def submit(self, spec: Any) -> str:
        answer = self._json("POST", f"{API}/task", body=spec)
        task = answer.get("task") if isinstance(answer, dict) else None
        if not isinstance(task, str):
            raise RemoteError(f"unexpected answer to submit: {_excerpt(str(answer))}")
        return task

    def status(self, task_id: str) -> dict[str, Any]:
        answer = self._json("GET", f"{API}/task/{_segment(task_id)}/status")
        status = answer.get("status") if isinstance(answer, dict) else None
        if not isinstance(status, dict):
            raise RemoteError(f"unexpected status answer: {_excerpt(str(answer))}")
        return status

    def reports(self, task_id: str) -> dict[str, Any] | None:
        """The task's reports, or None while it has none (404)."""
        response = self._request(
            "GET", f"{API}/task/{_segment(task_id)}/reports", ok=(200, 404)
        )
        if response.status_code == 404:
            return None
        try:
            answer = response.json()
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def log(self, task_id: str, offset: int = 0) -> bytes | None:
        """The task's log from byte ``offset`` (negative: the last bytes), or None
        while there is none (404)."""
        response = self._request(
            "GET",
            f"{API}/task/{_segment(task_id)}/log",
            params={"offset": offset},
            ok=(200, 404),
        )
        return None if response.status_code == 404 else response.content

    def tasks(
        self, state: str | None, datasource: str | None, max_tasks: int | None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if state:
            params["state"] = state
        if datasource:
            params["datasource"] = datasource
        if max_tasks is not None:
            params["max"] = max_tasks
        answer = self._json("GET", f"{API}/tasks", params=params)
        if not isinstance(answer, list):
            raise RemoteError(f"unexpected task list: {_excerpt(str(answer))}")
        return [row for row in answer if isinstance(row, dict)]

    def shutdown(self, task_id: str) -> Any:
        return self._json("POST", f"{API}/task/{_segment(task_id)}/shutdown")

    def shutdown_all(self, datasource: str) -> Any:
        response = self._request(
            "POST",
            f"{API}/datasources/{_segment(datasource)}/shutdownAllTasks",
            ok=(200, 404),
        )
        if response.status_code == 404:
            # Druid answers 404 with an empty body when nothing is active.
            raise RemoteError(f"HTTP 404: no active task of datasource [{datasource}]")
        return response.json()

    def delete_pending_segments(self, datasource: str, interval: str) -> Any:
        return self._json(
            "DELETE",
            f"{API}/pendingSegments/{_segment(datasource)}",
            params={"interval": interval},
        )


def _segment(value: str) -> str:
    # Task ids and datasources may hold any character but '/'.
    return quote(value, safe="")


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(error: BaseException) -> str:
    """The innermost cause of a connection failure (urllib3 nests it deeply)."""
    seen: BaseException = error
    while True:
        nested = seen.args[0] if seen.args else None
        reason = getattr(nested, "reason", None) or getattr(seen, "reason", None)
        if isinstance(nested, BaseException) and nested is not seen:
            seen = nested
        elif isinstance(reason, BaseException) and reason is not seen:
            seen = reason
        else:
            break
    text = str(seen)
    # urllib3: "<HTTPConnection object at 0x…>: Failed to establish a new
    # connection: [Errno 111] Connection refused"
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
        text = text.split("] ", 1)[-1]
    return text.rstrip(")'\"") or type(seen).__name__


def error_text(response: requests.Response) -> str:
    """One line for an error answer, from whichever body shape the server used
    (Druid mixes ``{"error": …}``, the DruidException envelope, text and empty
    bodies; OpenSearch nests ``error.reason``)."""
    text = response.text.strip()
    message: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("errorMessage", "error", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("reason") or value.get("type")
            if isinstance(value, str) and value:
                message = value
                break
    if message is None:
        message = _excerpt(text) if text else response.reason or "no body"
    return f"HTTP {response.status_code}: {message}"

"""A real ``overlord serve`` with basic auth and TLS (a throwaway certificate), as
its clients see it (issue 12): Airflow's DruidHook calls, opensearch-py with
``http_auth``, curl with ``--cacert``; task locations and the leader say https."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthenticationException, AuthorizationException
from requests.auth import HTTPBasicAuth
from sqlalchemy import select

from overlord.config import Settings
from overlord.db import Database
from overlord.store.models import AuditEntry
from tests.authn import ADMIN_PASSWORD, add_user
from tests.databases import DatabaseFactory
from tests.processes import (
    ServeProcess,
    overlord_env,
    run_overlord,
    serve_process,
    wait_for,
)

BASE = "/druid/indexer/v1"


@dataclass
class TlsServer:
    serve: ServeProcess
    cert: Path
    database: Database

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.serve.port}"


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def server(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    workdir = tmp_path_factory.mktemp("auth-tls-serve")
    cert, key = _certificate(workdir)
    with database_factory.fresh(workdir) as url:
        env = {
            "OVERLORD_AUTH_ENABLED": "true",
            "OVERLORD_AUTH_INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "OVERLORD_AUTH_CACHE_TTL": "PT0S",
            "OVERLORD_TLS_CERTFILE": str(cert),
            "OVERLORD_TLS_KEYFILE": str(key),
            "OVERLORD_POLL_INTERVAL": "PT0.05S",
            "OVERLORD_TASK_SHUTDOWN_GRACE": "PT1S",
            "OVERLORD_WORKER_SHUTDOWN_GRACE": "PT1S",
        }
        with serve_process(
            url, workdir, "--workers", "2", "--http-workers", "1", env=env
        ) as serve:
            base = f"https://127.0.0.1:{serve.port}"

            def healthy() -> bool:
                assert serve.popen.poll() is None, serve.output()
                try:
                    return requests.get(
                        f"{base}/status/health", verify=str(cert), timeout=1
                    ).ok
                except requests.ConnectionError:
                    return False

            wait_for(healthy, 60, describe=serve.output)
            database = Database(Settings(database_url=url, db_pool_size=1))
            try:
                add_user(
                    database,
                    "airflow",
                    "air:flow",
                    [("DATASOURCE", "a", "READ"), ("DATASOURCE", "a", "WRITE")],
                )
                add_user(
                    database,
                    "ops",
                    "pw",
                    [
                        ("CLUSTER", "cluster:monitor/.*", "READ"),
                        ("CLUSTER", "cluster:admin/tasks/cancel", "WRITE"),
                    ],
                )
                add_user(
                    database, "mon", "pw", [("CLUSTER", "cluster:monitor/.*", "READ")]
                )
                yield TlsServer(serve, cert, database)
            finally:
                database.dispose()


class DruidHookCalls:
    """The calls Airflow's DruidHook makes (provider main): ``auth=`` built from
    the connection's login and password, ``verify=`` its CA bundle, on submit
    (the spec's JSON text), each status poll, and shutdown (no body)."""

    def __init__(self, url: str, login: str, password: str, ca: Path) -> None:
        self.url, self.ca = url, str(ca)
        self.auth = HTTPBasicAuth(login, password)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}{BASE}{path}",
            auth=self.auth,
            verify=self.ca,
            timeout=30,
            **kwargs,
        )

    def submit(self, spec: str) -> requests.Response:
        return self._call(
            "POST", "/task", data=spec, headers={"Content-Type": "application/json"}
        )

    def status(self, task_id: str) -> dict[str, Any]:
        response = self._call("GET", f"/task/{task_id}/status")
        assert response.status_code == 200, response.text
        return dict(response.json()["status"])

    def shutdown(self, task_id: str) -> requests.Response:
        return self._call("POST", f"/task/{task_id}/shutdown")


def test_druid_hook_submits_polls_and_shuts_down_over_https(server: TlsServer) -> None:
    hook = DruidHookCalls(server.url, "airflow", "air:flow", server.cert)
    response = hook.submit('{"type": "noop", "dataSource": "a", "runTime": 60000}')
    assert response.status_code == 200, response.text
    task_id = response.json()["task"]
    running = wait_for(
        lambda: (s := hook.status(task_id))["runnerStatusCode"] == "RUNNING" and s,
        30,
    )
    # A TLS server's task location: port -1, the port as tlsPort (TaskLocation).
    assert running["location"] == {
        "host": running["location"]["host"],
        "port": -1,
        "tlsPort": server.serve.port,
    }
    assert hook.shutdown(task_id).json() == {"task": task_id}
    final = wait_for(
        lambda: (s := hook.status(task_id))["status"] != "RUNNING" and s, 30
    )
    assert final["status"] == "FAILED"
    # Another datasource: the hook's submit fails (Airflow raises on non-200).
    response = hook.submit('{"type": "noop", "dataSource": "b"}')
    assert (response.status_code, response.json()) == (
        403,
        {"Access-Check-Result": "Unauthorized"},
    )
    # A short noop reaches SUCCESS.
    task_id = hook.submit('{"type": "noop", "dataSource": "a", "runTime": 10}').json()[
        "task"
    ]
    final = wait_for(
        lambda: (s := hook.status(task_id))["status"] != "RUNNING" and s, 30
    )
    assert final["status"] == "SUCCESS"
    # The audit rows name the user.
    identities = server.database.run(
        lambda session: set(session.scalars(select(AuditEntry.identity)))
    )
    assert identities == {"airflow"}


def test_druid_hook_with_wrong_password_gets_401_page(server: TlsServer) -> None:
    hook = DruidHookCalls(server.url, "airflow", "wrong", server.cert)
    response = hook.submit('{"type": "noop", "dataSource": "a"}')
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert "<tr><th>MESSAGE:</th><td>User authentication failed.</td></tr>" in (
        response.text
    )


def test_opensearch_py_with_http_auth(server: TlsServer) -> None:
    def client(user: str, password: str) -> OpenSearch:
        return OpenSearch(
            server.url,
            http_auth=(user, password),
            ca_certs=str(server.cert),
            timeout=30,
        )

    listing = client("ops", "pw").tasks.list(group_by="none")
    assert isinstance(listing["tasks"], list)
    cancelled = client("ops", "pw").tasks.cancel(actions="nothing*")
    assert cancelled == {"nodes": {}}
    with pytest.raises(AuthorizationException) as denied:
        client("mon", "pw").tasks.cancel(actions="nothing*")
    assert denied.value.status_code == 403
    assert denied.value.error == "security_exception"
    assert denied.value.info["error"]["reason"] == (
        "no permissions for [cluster:admin/tasks/cancel] and User [name=mon, "
        "backend_roles=[], requestedTenant=null]"
    )
    with pytest.raises(AuthenticationException) as unauthenticated:
        client("ops", "wrong").tasks.list()
    assert (unauthenticated.value.status_code, unauthenticated.value.error) == (
        401,
        "Unauthorized",
    )
    with pytest.raises(AuthorizationException):
        client("airflow", "air:flow").tasks.list()


def test_curl_with_cacert_and_leader_says_https(server: TlsServer) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(server.cert),
            "-u",
            f"admin:{ADMIN_PASSWORD}",
            f"{server.url}{BASE}/leader",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, server.url)
    # Without the CA the certificate is refused; plain HTTP on the port fails.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.url}/status/health", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.serve.port}/status/health", timeout=5)


def test_serve_refuses_half_a_tls_pair(database_url: str, tmp_path: Path) -> None:
    result = run_overlord(
        "serve",
        "--port",
        "1",
        "--database-url",
        database_url,
        env={
            **overlord_env(),
            "OVERLORD_TLS_CERTFILE": str(tmp_path / "missing.pem"),
        },
    )
    assert result.returncode == 1
    assert result.stderr.endswith(
        "error: tls_certfile and tls_keyfile go together: set both or neither\n"
    )

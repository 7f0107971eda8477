"""Configuration mistakes through the real ``overlord`` command: one line naming
the setting (as the flag, variable or file key that gave it) and what is wrong,
no traceback, exit code 1 (2 for click's own usage errors), passwords masked.
None of these reaches a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import overlord_env

OVERLORD = str(Path(sys.executable).parent / "overlord")
SCHEMES = "sqlite, sqlite+pysqlite, postgresql+psycopg, mysql+pymysql, mariadb+pymysql"
# Nothing listens on port 1 of the loopback: connecting is refused at once.
UNREACHABLE_PG = "postgresql+psycopg://overlord:s3cret@127.0.0.1:1/overlord"
UNREACHABLE_MARIADB = "mysql+pymysql://overlord:s3cret@127.0.0.1:1/overlord"


def _run(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OVERLORD, *args],
        env=overlord_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CASES = [
    pytest.param(
        ["db", "current"],
        {"OVERLORD_DATABASE_URL": "foo://db/overlord"},
        f"OVERLORD_DATABASE_URL: unknown scheme 'foo' in 'foo://db/overlord' "
        f"(expected {SCHEMES})",
        id="url-unknown-scheme-env",
    ),
    pytest.param(
        ["db", "upgrade", "--database-url", "postgresql://u:s3cret@db/overlord"],
        {},
        "--database-url: unknown scheme 'postgresql' in "
        f"'postgresql://u:<masked>@db/overlord' (expected {SCHEMES})",
        id="url-driverless-scheme-flag-masked",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_DATABASE_URL": "overlord.sqlite3"},
        "OVERLORD_DATABASE_URL: cannot parse 'overlord.sqlite3' as a database URL",
        id="url-unparsable",
    ),
    pytest.param(
        ["db", "check"],
        {"OVERLORD_DATABASE_URL": "mysql+pymysql://root:s3cret@127.0.0.1"},
        "OVERLORD_DATABASE_URL: no database name in "
        "'mysql+pymysql://root:<masked>@127.0.0.1'",
        id="url-no-database",
    ),
    pytest.param(
        ["db", "current", "--database-url", UNREACHABLE_PG],
        {},
        "database_url postgresql+psycopg://overlord:<masked>@127.0.0.1:1/overlord: "
        'cannot use the database: connection failed: connection to server at "127.0.0.1", '
        "port 1 failed: Connection refused",
        id="postgresql-unreachable",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_DATABASE_URL": UNREACHABLE_MARIADB},
        "database_url mysql+pymysql://overlord:<masked>@127.0.0.1:1/overlord: "
        "cannot use the database: Can't connect to MySQL server on '127.0.0.1' "
        "([Errno 111] Connection refused)",
        id="mariadb-unreachable",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_LOG_LEVEL": "LOUD"},
        "OVERLORD_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "not 'LOUD'",
        id="log-level",
    ),
    pytest.param(
        ["serve", "--port", "70000"],
        {},
        "--port: must be between 1 and 65535, not 70000",
        id="port-flag-range",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_PORT": "70000"},
        "OVERLORD_PORT: must be between 1 and 65535, not 70000",
        id="port-env-range",
    ),
    pytest.param(
        ["serve", "--port", "http"],
        {},
        "--port: must be an integer, not 'http'",
        id="port-flag-text",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_PORT": "http"},
        "OVERLORD_PORT: must be an integer, not 'http'",
        id="port-env-text",
    ),
    pytest.param(
        ["serve", "--http-workers", "0"],
        {},
        "--http-workers: must be at least 1, not 0",
        id="http-workers-zero-flag",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_HTTP_WORKERS": "0"},
        "OVERLORD_HTTP_WORKERS: must be at least 1, not 0",
        id="http-workers-zero-env",
    ),
    pytest.param(
        ["serve", "--workers", "-1"],
        {},
        "--workers: must be at least 0, not -1",
        id="workers-negative",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_DB_POOL_SIZE": "0"},
        "OVERLORD_DB_POOL_SIZE: must be at least 1, not 0",
        id="pool-size-zero",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_TASK_LEASE": "PT0S"},
        "OVERLORD_TASK_LEASE: must be at least PT1S, not PT0S",
        id="task-lease-zero",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_POLL_INTERVAL": "PT0S"},
        "OVERLORD_POLL_INTERVAL: must be at least PT0.01S, not PT0S",
        id="poll-interval-zero",
    ),
    pytest.param(
        ["worker"],
        {"OVERLORD_WORKER_SHUTDOWN_GRACE": "-PT1S"},
        "OVERLORD_WORKER_SHUTDOWN_GRACE: must not be negative, not '-PT1S'",
        id="grace-negative",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_TASK_LEASE": "30s"},
        "OVERLORD_TASK_LEASE: must be an ISO-8601 period such as PT30S, not '30s'",
        id="period-garbage",
    ),
    pytest.param(
        ["serve"],
        {"OVERLORD_ELASTIC_PRODUCT_HEADER": "maybe"},
        "OVERLORD_ELASTIC_PRODUCT_HEADER: must be true or false, not 'maybe'",
        id="boolean-word",
    ),
    pytest.param(
        ["serve", "--host", " "],
        {},
        "--host: must not be empty",
        id="host-empty",
    ),
    pytest.param(
        ["db", "current"],
        {"OVERLORD_CONFIG": "absent.toml"},
        "OVERLORD_CONFIG: cannot read absent.toml: [Errno 2] No such file or "
        "directory: 'absent.toml'",
        id="config-file-missing",
    ),
]


@pytest.mark.parametrize(("args", "env", "message"), CASES)
def test_cli_setting_mistake_one_line_exit_1(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = _run(args, env, tmp_path)

    assert (result.returncode, result.stderr, result.stdout) == (
        1,
        f"Error: {message}\n",
        "",
    )


def test_cli_config_file_mistakes_name_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "overlord.toml"
    config.write_text('task_lease = "PT0.5S"\nport = 0\nprot = 1\n')

    result = _run(["serve"], {"OVERLORD_CONFIG": str(config)}, tmp_path)

    assert (result.returncode, result.stderr) == (
        1,
        f"Error: {config}: port: must be between 1 and 65535, not 0; "
        f"{config}: task_lease: must be at least PT1S, not PT0.5S; "
        f"{config}: unknown setting 'prot'\n",
    )


def test_cli_unknown_overlord_variable_warns_and_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"

    result = _run(
        ["db", "upgrade"],
        {"OVERLORD_DATABASE_URL": url, "OVERLORD_TASK_LEAES": "PT1M"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "Warning: unknown environment variable OVERLORD_TASK_LEAES (ignored)\n"
    )
    assert result.stdout == f"{url}: at head\n"


def test_cli_unknown_option_is_clicks_usage_error_exit_2(tmp_path: Path) -> None:
    result = _run(["serve", "--prot", "8090"], {}, tmp_path)

    assert result.returncode == 2
    assert result.stderr.endswith(
        "Error: No such option '--prot'. (Did you mean one of: '--host', '--port'?)\n"
    )
    assert "Traceback" not in result.stderr

"""Settings: defaults → TOML file → ``OVERLORD_*`` variables → flags, typed and
validated, every bad key reported at once; database URLs shown without password."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from overlord.config import (
    DEFAULT_DATABASE_URL,
    Settings,
    SettingsError,
    env_name,
    load_settings,
    mask_url_password,
    setting_fields,
    setting_text,
    unknown_variables,
)

ROOT = Path(__file__).resolve().parents[2]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overlord.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(environ: dict[str, str], file: Path | None = None, **overrides: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, file, **overrides)
    return str(caught.value)


def test_load_settings_empty_environment_gives_documented_defaults() -> None:
    settings = load_settings({})

    assert settings == Settings()
    assert (
        settings.database_url
        == DEFAULT_DATABASE_URL
        == "sqlite:///var/overlord.sqlite3"
    )
    assert (settings.host, settings.port) == ("127.0.0.1", 8090)
    assert (settings.workers, settings.http_workers, settings.http_threads) == (2, 2, 8)
    assert settings.task_lease == dt.timedelta(seconds=30)
    assert settings.poll_interval == dt.timedelta(milliseconds=200)
    assert settings.recently_finished_threshold == dt.timedelta(hours=24)
    assert settings.max_body_size == 10 * 1024 * 1024
    assert settings.elastic_product_header is False
    assert settings.leader_url == "http://127.0.0.1:8090"


def test_load_settings_advertised_url_replaces_leader_url() -> None:
    settings = load_settings({"OVERLORD_ADVERTISED_URL": "http://overlord:8081"})

    assert settings.leader_url == "http://overlord:8081"


def test_load_settings_config_variable_reads_toml_file(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        'port = 9000\ntask_lease = "PT1M"\nelastic_product_header = true\n'
        'database_url = "postgresql+psycopg://u@db/overlord"\n',
    )

    settings = load_settings({"OVERLORD_CONFIG": str(path)})

    assert settings == Settings(
        port=9000,
        task_lease=dt.timedelta(minutes=1),
        elastic_product_header=True,
        database_url="postgresql+psycopg://u@db/overlord",
    )


def test_load_settings_file_argument_wins_over_config_variable(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 9001\n")

    # The variable names a file that does not exist: it must not be read at all.
    settings = load_settings({"OVERLORD_CONFIG": str(tmp_path / "absent.toml")}, path)

    assert settings.port == 9001


def test_load_settings_empty_config_variable_reads_no_file() -> None:
    assert load_settings({"OVERLORD_CONFIG": ""}) == Settings()


def test_load_settings_environment_overrides_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 9000\nhost = "192.0.2.10"\n')

    settings = load_settings({"OVERLORD_CONFIG": str(path), "OVERLORD_PORT": "9100"})

    assert (settings.host, settings.port) == ("192.0.2.10", 9100)


def test_load_settings_flags_override_environment_and_none_flags_do_not(
    tmp_path: Path,
) -> None:
    path = _toml(tmp_path, "port = 9000\nworkers = 4\nhttp_workers = 3\n")
    environ = {
        "OVERLORD_CONFIG": str(path),
        "OVERLORD_PORT": "9100",
        "OVERLORD_WORKERS": "5",
    }

    settings = load_settings(environ, port=9200, workers=None, http_workers=None)

    assert (settings.port, settings.workers, settings.http_workers) == (9200, 5, 3)


def test_load_settings_unrelated_variables_ignored() -> None:
    environ = {"OVERLORD_TEST_BACKEND": "mariadb", "PORT": "1", "overlord_port": "2"}

    assert load_settings(environ) == Settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("PT30S", dt.timedelta(seconds=30), id="seconds"),
        pytest.param("P1D", dt.timedelta(days=1), id="day"),
        pytest.param("PT0.5S", dt.timedelta(milliseconds=500), id="fraction"),
        pytest.param("PT1H30M", dt.timedelta(minutes=90), id="hours-minutes"),
        pytest.param("P1W", dt.timedelta(weeks=1), id="week"),
        pytest.param("PT0S", dt.timedelta(0), id="zero"),
    ],
)
def test_load_settings_iso_period_parsed(
    tmp_path: Path, text: str, expected: dt.timedelta
) -> None:
    from_env = load_settings({"OVERLORD_TASK_SHUTDOWN_GRACE": text})
    from_file = load_settings({}, _toml(tmp_path, f'task_shutdown_grace = "{text}"\n'))

    assert from_env.task_shutdown_grace == from_file.task_shutdown_grace == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("1", True, id="one"),
        pytest.param("YES", True, id="yes-upper"),
        pytest.param(" on ", True, id="on-spaced"),
        pytest.param("false", False, id="false"),
        pytest.param("0", False, id="zero"),
        pytest.param("no", False, id="no"),
        pytest.param("off", False, id="off"),
    ],
)
def test_load_settings_boolean_words_parsed(text: str, expected: bool) -> None:
    settings = load_settings({"OVERLORD_ELASTIC_PRODUCT_HEADER": text})

    assert settings.elastic_product_header is expected


@pytest.mark.parametrize(
    ("environ", "toml", "message"),
    [
        pytest.param(
            {"OVERLORD_PORT": "http"},
            "",
            "OVERLORD_PORT: must be an integer, not 'http'",
            id="int-text",
        ),
        pytest.param(
            {},
            "port = true\n",
            "{file}: port: must be an integer, not True",
            id="int-bool",
        ),
        pytest.param(
            {}, "host = 5\n", "{file}: host: must be a string, not 5", id="str-int"
        ),
        pytest.param(
            {"OVERLORD_ELASTIC_PRODUCT_HEADER": "maybe"},
            "",
            "OVERLORD_ELASTIC_PRODUCT_HEADER: must be true or false, not 'maybe'",
            id="bool-word",
        ),
        pytest.param(
            {"OVERLORD_TASK_LEASE": "30s"},
            "",
            "OVERLORD_TASK_LEASE: must be an ISO-8601 period such as PT30S, not '30s'",
            id="period-garbage",
        ),
        pytest.param(
            {"OVERLORD_TASK_LEASE": "-PT1S"},
            "",
            "OVERLORD_TASK_LEASE: must not be negative, not '-PT1S'",
            id="period-negative",
        ),
        pytest.param(
            {},
            'task_lease = "P1M"\n',
            "{file}: task_lease: must be a period of fixed length (days, hours, "
            "minutes, seconds), not 'P1M'",
            id="period-month",
        ),
    ],
)
def test_load_settings_bad_value_raises_settings_error(
    tmp_path: Path, environ: dict[str, str], toml: str, message: str
) -> None:
    file = _toml(tmp_path, toml) if toml else None

    assert _error(environ, file) == message.format(file=file)


def test_load_settings_many_bad_keys_all_listed_in_one_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'prot = 1\nhost = 5\nlog_levle = "DEBUG"\n')
    environ = {
        "OVERLORD_CONFIG": str(path),
        "OVERLORD_DB_POOL_SIZE": "abc",
        "OVERLORD_POLL_INTERVAL": "soon",
        "OVERLORD_PORT": "9000",  # a good one among them
    }

    message = _error(environ, workers="many")

    assert message == (
        "--workers: must be an integer, not 'many'; "
        f"{path}: host: must be a string, not 5; "
        f"{path}: unknown setting 'log_levle'; "
        f"{path}: unknown setting 'prot'; "
        "OVERLORD_DB_POOL_SIZE: must be an integer, not 'abc'; "
        "OVERLORD_POLL_INTERVAL: must be an ISO-8601 period such as PT30S, not 'soon'"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("port = [\n", "Invalid value", id="syntax"),
        pytest.param(None, "No such file or directory", id="missing"),
    ],
)
def test_load_settings_unreadable_file_raises_settings_error(
    tmp_path: Path, text: str | None, reason: str
) -> None:
    path = _toml(tmp_path, text) if text is not None else tmp_path / "absent.toml"

    message = _error({"OVERLORD_CONFIG": str(path)})

    assert message.startswith(f"OVERLORD_CONFIG: cannot read {path}: ")
    assert reason in message


def test_load_settings_exported_environment_round_trips() -> None:
    """``overlord serve`` hands its settings to its workers as OVERLORD_* text."""
    settings = Settings(
        database_url="mysql+pymysql://root:s3cret@127.0.0.1:3306/overlord",
        port=9999,
        http_threads=3,
        task_lease=dt.timedelta(seconds=1, milliseconds=250),
        log_level="DEBUG",
        poll_interval=dt.timedelta(milliseconds=50),
        pending_segments_cleanup_buffer=dt.timedelta(days=2, hours=3),
        elastic_product_header=True,
        advertised_url="",
    )
    environ = {
        env_name(field.name): setting_text(getattr(settings, field.name))
        for field in setting_fields()
    }

    assert load_settings(environ) == settings


def test_setting_text_each_type_spelled_as_variable() -> None:
    assert setting_text(dt.timedelta(milliseconds=500)) == "PT0.5S"
    assert setting_text(dt.timedelta(days=1)) == "P1D"
    assert setting_text(True) == "true"
    assert setting_text(False) == "false"
    assert setting_text(8090) == "8090"


def test_env_name_every_setting_unique_overlord_variable() -> None:
    names = [env_name(field.name) for field in setting_fields()]

    assert all(re.fullmatch(r"OVERLORD_[A-Z0-9_]+", name) for name in names), names
    assert "OVERLORD_DATABASE_URL" in names
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "postgresql+psycopg://overlord:s3cret@db:5432/overlord",
            "postgresql+psycopg://overlord:<masked>@db:5432/overlord",
            id="postgresql",
        ),
        pytest.param(
            "mysql+pymysql://root:p%40ss@127.0.0.1/overlord?charset=utf8mb4",
            "mysql+pymysql://root:<masked>@127.0.0.1/overlord?charset=utf8mb4",
            id="escaped-password-query",
        ),
        pytest.param(
            "postgresql://pw:pw@host/db",
            "postgresql://pw:<masked>@host/db",
            id="password-equals-user",
        ),
        pytest.param(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
            id="no-password",
        ),
        pytest.param(
            "sqlite:///var/overlord.sqlite3",
            "sqlite:///var/overlord.sqlite3",
            id="sqlite",
        ),
    ],
)
def test_mask_url_password_hides_only_the_password(url: str, shown: str) -> None:
    assert mask_url_password(url) == shown


def test_load_settings_example_config_file_gives_defaults() -> None:
    path = ROOT / "config" / "overlord.toml"

    assert load_settings({"OVERLORD_CONFIG": str(path)}) == Settings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {"OVERLORD_PORT": "0"},
            "OVERLORD_PORT: must be between 1 and 65535, not 0",
            id="port-zero",
        ),
        pytest.param(
            {"OVERLORD_PORT": "65536"},
            "OVERLORD_PORT: must be between 1 and 65535, not 65536",
            id="port-high",
        ),
        pytest.param(
            {"OVERLORD_HTTP_THREADS": "0"},
            "OVERLORD_HTTP_THREADS: must be at least 1, not 0",
            id="threads-zero",
        ),
        pytest.param(
            {"OVERLORD_DB_RETRY_ATTEMPTS": "0"},
            "OVERLORD_DB_RETRY_ATTEMPTS: must be at least 1, not 0",
            id="attempts-zero",
        ),
        pytest.param(
            {"OVERLORD_MAX_BODY_SIZE": "-1"},
            "OVERLORD_MAX_BODY_SIZE: must be at least 1, not -1",
            id="body-negative",
        ),
        pytest.param(
            {"OVERLORD_OPENSEARCH_MAX_WAITS": "-1"},
            "OVERLORD_OPENSEARCH_MAX_WAITS: must be at least 0, not -1",
            id="waits-negative",
        ),
        pytest.param(
            {"OVERLORD_TASK_LEASE": "PT0.999S"},
            "OVERLORD_TASK_LEASE: must be at least PT1S, not PT0.999S",
            id="lease-below-minimum",
        ),
        pytest.param(
            {"OVERLORD_DB_BUSY_TIMEOUT": "PT0S"},
            "OVERLORD_DB_BUSY_TIMEOUT: must be at least PT0.1S, not PT0S",
            id="busy-zero",
        ),
        pytest.param(
            {"OVERLORD_DB_POOL_RECYCLE": "PT0S"},
            "OVERLORD_DB_POOL_RECYCLE: must be at least PT1S, not PT0S",
            id="recycle-zero",
        ),
        pytest.param(
            {"OVERLORD_PENDING_SEGMENTS_CLEANUP_PERIOD": "PT0S"},
            "OVERLORD_PENDING_SEGMENTS_CLEANUP_PERIOD: must be at least PT1S, not PT0S",
            id="cleanup-zero",
        ),
        pytest.param(
            {"OVERLORD_LOG_LEVEL": "verbose"},
            "OVERLORD_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, "
            "CRITICAL, not 'verbose'",
            id="log-level",
        ),
        pytest.param(
            {"OVERLORD_DATABASE_URL": "postgresql+psycopg://u:s3cret@db:x/overlord"},
            "OVERLORD_DATABASE_URL: cannot parse "
            "'postgresql+psycopg://u:<masked>@db:x/overlord' as a database URL",
            id="url-bad-port-masked",
        ),
        pytest.param(
            {"OVERLORD_DATABASE_URL": "postgresql+psycopg://u:s3cret@db"},
            "OVERLORD_DATABASE_URL: no database name in "
            "'postgresql+psycopg://u:<masked>@db'",
            id="url-no-database-masked",
        ),
        pytest.param(
            {"OVERLORD_DATABASE_URL": "oracle://u:s3cret@db/x"},
            "OVERLORD_DATABASE_URL: unknown scheme 'oracle' in "
            "'oracle://u:<masked>@db/x' (expected sqlite, sqlite+pysqlite, "
            "postgresql+psycopg, mysql+pymysql, mariadb+pymysql)",
            id="url-unknown-scheme-masked",
        ),
        pytest.param(
            {"OVERLORD_HOST": ""},
            "OVERLORD_HOST: must not be empty",
            id="host-empty",
        ),
    ],
)
def test_load_settings_value_out_of_limits_names_variable(
    environ: dict[str, str], message: str
) -> None:
    assert _error(environ) == message


def test_load_settings_flag_and_variable_same_check_named_by_source(
    tmp_path: Path,
) -> None:
    from_flag = _error({}, http_workers="0")
    from_env = _error({"OVERLORD_HTTP_WORKERS": "0"})
    from_file = _error({}, _toml(tmp_path, "http_workers = 0\n"))

    assert from_flag == "--http-workers: must be at least 1, not 0"
    assert from_env == "OVERLORD_HTTP_WORKERS: must be at least 1, not 0"
    assert (
        from_file
        == f"{tmp_path}/overlord.toml: http_workers: must be at least 1, not 0"
    )


def test_load_settings_limits_accept_their_bounds() -> None:
    settings = load_settings(
        {
            "OVERLORD_PORT": "65535",
            "OVERLORD_WORKERS": "0",
            "OVERLORD_TASK_LEASE": "PT1S",
            "OVERLORD_POLL_INTERVAL": "PT0.01S",
            "OVERLORD_TASK_SHUTDOWN_GRACE": "PT0S",
            "OVERLORD_LOG_LEVEL": "warning",
            "OVERLORD_DATABASE_URL": "mariadb+pymysql://root@db/overlord",
        }
    )

    assert (settings.port, settings.workers, settings.log_level) == (
        65535,
        0,
        "WARNING",
    )
    assert settings.task_lease == dt.timedelta(seconds=1)
    assert settings.poll_interval == dt.timedelta(milliseconds=10)


def test_unknown_variables_lists_overlord_names_of_no_setting() -> None:
    environ = {
        "OVERLORD_PORT": "1",
        "OVERLORD_CONFIG": "",
        "OVERLORD_TASK_LEAES": "PT1M",
        "OVERLORD_TEST_BACKEND": "mariadb",
        "overlord_foo": "x",
        "PORT": "1",
    }

    assert unknown_variables(environ) == [
        "OVERLORD_TASK_LEAES",
        "OVERLORD_TEST_BACKEND",
    ]

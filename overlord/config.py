"""Typed settings: defaults, then an optional TOML file, then ``OVERLORD_*`` variables.

The command line applies its flags last (``dataclasses.replace``). This is the only
module that knows the environment's variable names; ``load_settings`` takes the
environment as a mapping so tests never patch ``os.environ``.
Imports only ``timeutil`` from overlord (for ISO-8601 periods).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from overlord.timeutil import InvalidTime, format_period, parse_period

ENV_PREFIX = "OVERLORD_"
CONFIG_ENV = "OVERLORD_CONFIG"
DEFAULT_DATABASE_URL = "sqlite:///var/overlord.sqlite3"


@dataclasses.dataclass(frozen=True)
class Setting:
    """Documentation and limits of one setting: what README's table and
    config/overlord.toml show, and what ``load_settings`` enforces."""

    help: str
    unit: str = ""
    # Smallest and largest accepted value (an int, or a timedelta for periods);
    # None = no limit. Periods are never negative.
    minimum: Any = None
    maximum: Any = None
    choices: tuple[str, ...] = ()

    def limits(self) -> str:
        """The limits as README and the TOML reference spell them."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{setting_text(self.minimum)} to {setting_text(self.maximum)}"
        if self.minimum is not None:
            return f"at least {setting_text(self.minimum)}"
        return ""


def _field(
    default: Any,
    help: str,
    unit: str = "",
    *,
    minimum: Any = None,
    maximum: Any = None,
    choices: tuple[str, ...] = (),
) -> Any:
    doc = Setting(help, unit, minimum, maximum, choices)
    return dataclasses.field(default=default, metadata={"doc": doc})


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# Dialect+driver names make_engine sets up; a bare dialect name takes
# SQLAlchemy's default driver for it (psycopg2, mysqldb) that is not installed.
DATABASE_SCHEMES = (
    "sqlite",
    "sqlite+pysqlite",
    "postgresql+psycopg",
    "mysql+pymysql",
    "mariadb+pymysql",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of a server or worker. Durations are ISO-8601 periods as in Druid."""

    database_url: str = _field(
        DEFAULT_DATABASE_URL,
        "SQLAlchemy URL of the store: sqlite:///…, postgresql+psycopg://…, "
        "mysql+pymysql://…",
        "URL",
    )
    host: str = _field("127.0.0.1", "Address `overlord serve` listens on.")
    port: int = _field(
        8090, "Port `overlord serve` listens on.", "port", minimum=1, maximum=65535
    )
    workers: int = _field(
        2, "Task slots run by `overlord serve` (0 = none).", "slots", minimum=0
    )
    http_workers: int = _field(
        2, "HTTP worker processes of the production server.", "processes", minimum=1
    )
    http_threads: int = _field(
        8,
        "Threads per HTTP worker process (concurrent requests each).",
        "threads",
        minimum=1,
    )
    advertised_url: str = _field(
        "",
        "Base URL that `GET /druid/indexer/v1/leader` reports; empty = "
        "http(s)://<host>:<port>.",
        "URL",
    )
    db_pool_size: int = _field(
        5,
        "Connections kept per process (an HTTP process keeps at least "
        "http_threads + opensearch_max_waits).",
        "connections",
        minimum=1,
    )
    db_pool_recycle: dt.timedelta = _field(
        dt.timedelta(minutes=30),
        "Connections older than this are replaced (below every server's idle timeout).",
        "ISO-8601 period",
        # Shorter would replace busy connections all the time.
        minimum=_seconds(1),
    )
    db_busy_timeout: dt.timedelta = _field(
        dt.timedelta(seconds=30),
        "How long a SQLite writer queues for the write lock before giving up.",
        "ISO-8601 period",
        # Below this, two writers that merely overlap fail each other.
        minimum=_seconds(0.1),
    )
    db_connect_timeout: dt.timedelta = _field(
        dt.timedelta(seconds=10),
        "How long opening a connection may take: PostgreSQL's whole connection "
        "start, MariaDB's TCP connect (a host that never answers fails after this, "
        "not after the OS's TCP timeout).",
        "ISO-8601 period",
        # libpq counts whole seconds and treats 1 as 2.
        minimum=_seconds(2),
    )
    db_retry_attempts: int = _field(
        5,
        "Attempts of a transaction that hit a deadlock or lock timeout.",
        "attempts",
        minimum=1,
    )
    max_body_size: int = _field(
        10 * 1024 * 1024,
        "Largest request body accepted (413 above). Keep it below MariaDB's "
        "max_allowed_packet (16 MiB here).",
        "bytes",
        minimum=1,
    )
    recently_finished_threshold: dt.timedelta = _field(
        dt.timedelta(hours=24),
        "Completed tasks listed by `GET /tasks` without createdTimeInterval "
        "(Druid's druid.indexer.storage.recentlyFinishedThreshold).",
        "ISO-8601 period",
    )
    task_lease: dt.timedelta = _field(
        dt.timedelta(seconds=30),
        "A claimed task whose worker has not renewed it for this long is FAILED.",
        "ISO-8601 period",
        # Renewed every third of it: at PT0S every claimed task expires at once and
        # the duty fails it while it starts (the store wedges).
        minimum=_seconds(1),
    )
    poll_interval: dt.timedelta = _field(
        dt.timedelta(milliseconds=200),
        "How often workers look for work where no NOTIFY exists (SQLite, MariaDB).",
        "ISO-8601 period",
        # PT0S would spin on the database.
        minimum=_seconds(0.01),
    )
    pending_segments_cleanup_period: dt.timedelta = _field(
        dt.timedelta(minutes=30),
        "How often the stale pending-segment duty runs.",
        "ISO-8601 period",
        minimum=_seconds(1),
    )
    pending_segments_cleanup_buffer: dt.timedelta = _field(
        dt.timedelta(days=1),
        "The duty keeps pending segments created within this period before the "
        "oldest active task.",
        "ISO-8601 period",
    )
    task_shutdown_grace: dt.timedelta = _field(
        dt.timedelta(seconds=5),
        "How long a task may take to stop after a shutdown before it is killed.",
        "ISO-8601 period",
    )
    worker_shutdown_grace: dt.timedelta = _field(
        dt.timedelta(seconds=30),
        "On SIGTERM a worker stops claiming and lets running tasks finish this long.",
        "ISO-8601 period",
    )
    task_log_max_size: int = _field(
        10 * 1024 * 1024,
        "Log bytes kept per task; later lines are dropped.",
        "bytes",
        minimum=0,
    )
    deep_storage_dir: str = _field(
        "var/segments",
        "Deep storage: a directory (Druid's `local`) or a filesystem URI "
        "(`s3://…`, `file://…`).",
        "path or URI",
    )
    log_level: str = _field(
        "INFO", "Python logging level.", "level", choices=LOG_LEVELS
    )
    log_format: str = _field(
        "text",
        "Log lines as text, or as one JSON object per line (fields `time`, `level`, "
        "`logger`, `message`, and `task_id`/`opaque_id`/`route`/`status` where "
        "they apply).",
        "format",
        choices=LOG_FORMATS,
    )
    access_log: bool = _field(
        True,
        "One log line per HTTP request (`overlord.access`: method, route template, "
        "status, duration, task id, X-Opaque-Id).",
        "boolean",
    )
    metrics_emission_period: dt.timedelta = _field(
        dt.timedelta(minutes=1),
        "How often `serve` adds the current task and task slot counts to Druid's "
        "`druid_task_{running,pending,waiting}_count_total` and "
        "`druid_taskslot_{total,idle,used}_count_total` counters "
        "(Druid's `druid.monitoring.emissionPeriod`).",
        "ISO-8601 period",
        minimum=_seconds(0.1),
    )
    elastic_product_header: bool = _field(
        False,
        "Send `X-Elastic-Product: Elasticsearch` on _tasks responses "
        "(only elasticsearch-py needs it).",
        "boolean",
    )
    opensearch_wait_timeout: dt.timedelta = _field(
        dt.timedelta(seconds=30),
        "How long `_tasks` calls with wait_for_completion wait when the request "
        "gives no `timeout` (OpenSearch's default; opensearch-py never sends one).",
        "ISO-8601 period",
    )
    opensearch_max_waits: int = _field(
        4,
        "`_tasks` waits (wait_for_completion) one HTTP worker process serves at once; "
        "more are refused with 429. `serve` adds this many threads to "
        "http_threads, so waits never take a thread from Druid's polls.",
        "requests",
        minimum=0,
    )
    action_wait_cap: dt.timedelta = _field(
        dt.timedelta(minutes=5),
        "Longest a `lockAcquire` task action holds its HTTP thread waiting for the "
        "lock: its `timeoutMs` is capped by this, and `timeoutMs` 0 (Druid: no "
        "limit) waits this long.",
        "ISO-8601 period",
        minimum=_seconds(1),
    )

    auth_enabled: bool = _field(
        False,
        "Basic authentication and Druid's per-resource permissions on every route "
        "(off = Druid's allowAll: nothing is ever 401 or 403).",
        "boolean",
    )
    auth_initial_admin_password: str = _field(
        "",
        "Creates user `admin` (role `admin`: every permission) with this password if "
        "it has none; never changes an existing password. Empty = no admin login.",
        "password",
    )
    auth_initial_internal_client_password: str = _field(
        "",
        "The same for the internal user `druid_system`.",
        "password",
    )
    auth_credential_iterations: int = _field(
        10000,
        "PBKDF2 iterations of passwords set without an explicit count "
        "(Druid's credentialIterations).",
        "iterations",
        minimum=1,
    )
    auth_cache_ttl: dt.timedelta = _field(
        dt.timedelta(seconds=5),
        "How long a server keeps a user's credentials and permissions: a change to "
        "users, roles or permissions is in force everywhere within this period.",
        "ISO-8601 period",
    )
    auth_unsecured_paths: str = _field(
        "",
        "Comma-separated paths served without authentication, besides "
        "/status/health and /druid/indexer/v1/isLeader (Druid's "
        "druid.auth.unsecuredPaths; a trailing `*` matches a prefix).",
        "paths",
    )
    auth_anonymous_identity: str = _field(
        "",
        "When set, requests without credentials run as this user (Druid's "
        "`anonymous` authenticator at the end of the chain). Empty = 401.",
        "user name",
    )
    auth_skip_on_failure: bool = _field(
        False,
        "An unknown user falls through to the anonymous identity instead of 401 "
        "(Druid's skipOnFailure; a wrong password is always 401).",
        "boolean",
    )
    auth_enable_input_source_security: bool = _field(
        False,
        "Submit also needs EXTERNAL READ on each input source type "
        "(Druid's druid.auth.enableInputSourceSecurity).",
        "boolean",
    )
    tls_certfile: str = _field(
        "",
        "PEM certificate (chain) file: `overlord serve` speaks HTTPS on its port. "
        "Needs tls_keyfile.",
        "path",
    )
    tls_keyfile: str = _field("", "PEM private key file of tls_certfile.", "path")

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_certfile)

    @property
    def leader_url(self) -> str:
        scheme = "https" if self.tls_enabled else "http"
        return self.advertised_url or f"{scheme}://{self.host}:{self.port}"


class SettingsError(ValueError):
    """One or more settings could not be read; the message lists every bad key."""


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(Settings))


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    """The command-line flag of a setting (``--http-workers``)."""
    return "--" + name.replace("_", "-")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``OVERLORD_*`` variables that name no setting (a typo, or a setting that
    no longer exists): the command line warns about each and goes on."""
    known = {env_name(f.name) for f in setting_fields()} | {CONFIG_ENV}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(
    environ: Mapping[str, str], file: Path | None = None, **overrides: Any
) -> Settings:
    """Build settings from defaults → TOML file → ``OVERLORD_*`` → overrides.

    ``file`` defaults to ``environ["OVERLORD_CONFIG"]`` when set. ``overrides`` are the
    command line's flags; ``None`` values are skipped. Every value goes through the
    same checks wherever it comes from; an error names its source: the flag
    (``--port``), the variable (``OVERLORD_PORT``) or the file and key.
    Raises:
        SettingsError: an unknown key in the file, or a value of the wrong type or
            out of the setting's limits.
    """
    known = {f.name for f in setting_fields()}
    raw: dict[str, tuple[str, Any]] = {}
    errors: list[str] = []
    if file is None and environ.get(CONFIG_ENV):
        file = Path(environ[CONFIG_ENV])
    if file is not None:
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"{CONFIG_ENV}: cannot read {file}: {error}") from error
        for key, value in document.items():
            if key in known:
                raw[key] = (f"{file}: {key}", value)
            else:
                errors.append(f"{file}: unknown setting {key!r}")
    for name in known:
        variable = env_name(name)
        if variable in environ:
            raw[name] = (variable, environ[variable])
    raw.update({k: (flag_name(k), v) for k, v in overrides.items() if v is not None})
    hints = get_type_hints(Settings)
    docs = {f.name: f.metadata["doc"] for f in setting_fields()}
    values: dict[str, Any] = {}
    for name, (source, value) in raw.items():
        try:
            values[name] = _check(name, docs[name], _coerce(hints[name], value))
        except (TypeError, ValueError, InvalidTime) as error:
            errors.append(f"{source}: {error}")
    if errors:
        raise SettingsError("; ".join(sorted(errors)))
    return Settings(**values)


def _check(name: str, doc: Setting, value: Any) -> Any:
    """``value`` within the setting's limits (choices in any case, kept in the
    case the choices are spelled in: INFO, json)."""
    if doc.choices:
        by_case = {choice.casefold(): choice for choice in doc.choices}
        if value.casefold() not in by_case:
            raise ValueError(f"must be {doc.limits()}, not {value!r}")
        return by_case[value.casefold()]
    low, high = doc.minimum, doc.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        limits = f"between {doc.limits().replace(' to ', ' and ')}"
        if high is None:
            limits = doc.limits()
        raise ValueError(f"must be {limits}, not {setting_text(value)}")
    if name == "database_url":
        _check_database_url(value)
    elif name == "host" and not value.strip():
        raise ValueError("must not be empty")
    return value


def _check_database_url(url: str) -> None:
    # SQLAlchemy only parses here; the database is reached when a command needs it.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise ValueError(
            f"cannot parse {mask_url_password(url)!r} as a database URL"
        ) from error
    if parsed.drivername not in DATABASE_SCHEMES:
        raise ValueError(
            f"unknown scheme {parsed.drivername!r} in {mask_url_password(url)!r} "
            f"(expected {', '.join(DATABASE_SCHEMES)})"
        )
    if parsed.drivername != "sqlite" and not parsed.database:
        raise ValueError(f"no database name in {mask_url_password(url)!r}")


def _coerce(kind: Any, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"must be true or false, not {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(f"must be an integer, not {value!r}")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be an integer, not {value!r}") from None
    if kind is dt.timedelta:
        if isinstance(value, dt.timedelta):
            period = value
        else:
            try:
                period = parse_period(str(value).strip())
            except InvalidTime as error:
                kind_of = "an ISO-8601 period such as PT30S"
                if "months or years" in str(error):
                    kind_of = "a period of fixed length (days, hours, minutes, seconds)"
                raise ValueError(f"must be {kind_of}, not {value!r}") from None
        if period < dt.timedelta(0):
            raise ValueError(f"must not be negative, not {value!r}")
        return period
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"must be a string, not {value!r}")
        return value
    raise TypeError(f"unsupported setting type {kind!r}")


MASKED_VALUE = "<masked>"
# Settings whose value is a secret: /status/properties shows them masked.
SECRET_SETTINGS = frozenset(
    {"auth_initial_admin_password", "auth_initial_internal_client_password"}
)


def mask_url_password(url: str) -> str:
    """Hide the password of a database URL (for ``/status/properties`` and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASKED_VALUE}@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def setting_text(value: Any) -> str:
    """A setting's value as its environment variable would spell it."""
    if isinstance(value, dt.timedelta):
        return format_period(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_reference_toml() -> str:
    """config/overlord.toml: every setting, its default, unit and meaning."""
    lines = [
        "# overlord settings: every key with its default. Read only when OVERLORD_CONFIG",
        "# points at this file; OVERLORD_<KEY> variables and command-line flags override it.",
        "# Durations are ISO-8601 periods as in Druid (PT30S, P1D); sizes are bytes.",
        "# Generated by `python -m overlord.config`; a test keeps it in sync.",
    ]
    for field in setting_fields():
        doc: Setting = field.metadata["doc"]
        value = field.default
        if isinstance(value, bool | int):
            text = setting_text(value)
        else:
            text = '"' + setting_text(value).replace('"', '\\"') + '"'
        unit = ", ".join(filter(None, (doc.unit, doc.limits())))
        unit = f" [{unit}]" if unit else ""
        lines += [
            "",
            f"# {doc.help}{unit}",
            f"# env: {env_name(field.name)}",
            f"{field.name} = {text}",
        ]
    return "\n".join(lines) + "\n"


def settings_reference_markdown() -> str:
    """README's settings table."""
    rows = [
        "| name | TOML key | environment variable | unit | default |",
        "|---|---|---|---|---|",
    ]
    for field in setting_fields():
        doc: Setting = field.metadata["doc"]
        default = setting_text(field.default) or '""'
        rows.append(
            f"| {doc.help} | `{field.name}` | `{env_name(field.name)}` | "
            f"{', '.join(filter(None, (doc.unit, doc.limits()))) or '-'} | "
            f"`{default}` |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(
        settings_reference_markdown()
        if "--markdown" in sys.argv
        else settings_reference_toml()
    )

"""The ``overlord`` command: ``serve``, ``worker``, ``db upgrade|downgrade|current|check``.

serve's embedded-worker supervisor lives in ``overlord.worker.supervisor``, its HTTP
server launcher in ``overlord.server``.

Settings: defaults → ``OVERLORD_CONFIG`` TOML → ``OVERLORD_*`` → these flags.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from overlord.client_commands import register as register_client_commands
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
from overlord.logs import configure as configure_logging
from overlord.server import ABORT_EXIT_CODE

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _settings(**overrides: Any) -> Settings:
    """The settings of this command: one line naming the bad setting and exit 1
    on any mistake; a warning for each ``OVERLORD_*`` variable naming none."""
    for name in unknown_variables(os.environ):
        click.echo(f"Warning: unknown environment variable {name} (ignored)", err=True)
    try:
        return load_settings(os.environ, **overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


def store_text(settings: Settings) -> str:
    """The store as serve and worker announce it: the URL without its password,
    an SQLite file as an absolute path."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and not (
        database in ("", ":memory:") or database.startswith("file:")
    ):
        resolved = str(Path(database).resolve())
        return settings.database_url.replace(database, resolved, 1)
    return mask_url_password(settings.database_url)


def _announce_store(settings: Settings) -> None:
    command = click.get_current_context().info_name
    click.echo(f"overlord {command}: store {store_text(settings)}", err=True)


def _driver_reason(error: BaseException) -> str:
    """The first line of what the driver said (psycopg and pymysql add hints on
    further lines, pymysql wraps its text in a (code, message) tuple)."""
    orig = getattr(error, "orig", None) or error
    if isinstance(orig, OSError) and orig.filename:
        return f"{orig.strerror}: {orig.filename}"
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    text = args[1] if len(args) == 2 and isinstance(args[1], str) else str(orig)
    return (text.strip().splitlines() or [type(orig).__name__])[0].strip()


@contextlib.contextmanager
def _database_errors(settings: Settings) -> Iterator[None]:
    """A database that cannot be reached or used (host down, database missing,
    access denied, SQLite directory not writable) as one line naming the setting,
    the URL (password masked) and the driver's reason; exit code 1."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except (DBAPIError, OSError) as error:
        url = mask_url_password(settings.database_url)
        reason = _driver_reason(error)
        password = _url_password(settings.database_url)
        if password:
            reason = reason.replace(password, "<masked>")
        raise click.ClickException(
            f"database_url {url}: cannot use the database: {reason}"
        ) from error


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    return None if password is None else str(password)


@click.group()
@click.version_option(package_name="overlord")
def main() -> None:
    """Druid Overlord task API and OpenSearch _tasks API over one SQL store."""


database_url_option = click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL of the store (default: OVERLORD_DATABASE_URL, then "
    f"{DEFAULT_DATABASE_URL}).",
)


def _alembic_config(settings: Settings) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = settings.database_url
    return config


def schema_status(settings: Settings) -> tuple[str | None, str]:
    """(current revision, head revision) of the store."""
    # Reading the revision is a probe, not a migration: keep Alembic's INFO lines
    # (plugin set-up on import, "Context impl …") out of serve's and worker's logs,
    # so that a refusal to start is one line on stderr.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        with _database_errors(settings):
            status = _read_schema_status(settings)
    finally:
        alembic_log.setLevel(level)
    context = click.get_current_context(silent=True)
    # worker says which store it uses once the store is known to be usable; serve
    # says so itself, after its own schema handling (it may upgrade the default).
    if context is not None and context.info_name == "worker" and status[0] == status[1]:
        _announce_store(settings)
    return status


def _read_schema_status(settings: Settings) -> tuple[str | None, str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from overlord.db import make_engine

    script = ScriptDirectory.from_config(_alembic_config(settings))
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    head = script.get_current_head()
    assert head is not None
    return current, head


@contextlib.contextmanager
def _alembic_errors(settings: Settings) -> Iterator[None]:
    """Alembic's CommandError (drift found, database not at head, unknown revision)
    and database errors as a one-line error and exit code 1, not a traceback."""
    from alembic.util.exc import CommandError

    try:
        with _database_errors(settings):
            yield
    except CommandError as error:
        raise click.ClickException(str(error)) from error


@main.group()
def db() -> None:
    """Manage the store's schema (Alembic)."""


@db.command("upgrade")
@database_url_option
@click.argument("revision", default="head")
def db_upgrade(database_url: str | None, revision: str) -> None:
    """Migrate the store up to REVISION (default: head)."""
    from alembic import command

    settings = _settings(database_url=database_url)
    with _alembic_errors(settings):
        command.upgrade(_alembic_config(settings), revision)
    click.echo(f"{mask_url_password(settings.database_url)}: at {revision}")


# Relative revisions look like options ("-1", "-2"): take them as the argument.
@db.command("downgrade", context_settings={"ignore_unknown_options": True})
@database_url_option
@click.argument("revision", default="-1")
def db_downgrade(database_url: str | None, revision: str) -> None:
    """Migrate the store down to REVISION (default: one step)."""
    from alembic import command

    settings = _settings(database_url=database_url)
    with _alembic_errors(settings):
        command.downgrade(_alembic_config(settings), revision)


@db.command("current")
@database_url_option
def db_current(database_url: str | None) -> None:
    """Print the store's revision and the code's head."""
    current, head = schema_status(_settings(database_url=database_url))
    click.echo(f"current: {current or 'empty'}\nhead: {head}")


@db.command("check")
@database_url_option
def db_check(database_url: str | None) -> None:
    """Fail when the models and the migrations disagree (alembic check)."""
    from alembic import command

    settings = _settings(database_url=database_url)
    with _alembic_errors(settings):
        command.check(_alembic_config(settings))


def _export_settings(settings: Settings) -> None:
    """Hand the resolved settings to the server's worker processes through their
    environment, the one channel every server implementation passes on."""
    for field in setting_fields():
        os.environ[env_name(field.name)] = setting_text(getattr(settings, field.name))
    # serve warned about these already; its embedded worker need not again.
    for name in unknown_variables(os.environ):
        del os.environ[name]


@main.command()
# Values are read as text and checked by load_settings, exactly as their OVERLORD_*
# variables are: one message per mistake, naming the flag.
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, help="Port (default 8090).")
@click.option(
    "--workers", default=None, help="Task slots run by this server (0 = none)."
)
@click.option(
    "--http-workers",
    default=None,
    help="HTTP worker processes of the production server.",
)
@database_url_option
def serve(
    host: str | None,
    port: str | None,
    workers: str | None,
    http_workers: str | None,
    database_url: str | None,
) -> None:
    """Serve the Druid and _tasks APIs with the production server (granian)."""
    try:
        _serve(host, port, workers, http_workers, database_url)
    except KeyboardInterrupt:
        # Ctrl-C while serve still starts, before granian takes SIGINT over: stop
        # quietly (click would print "Aborted!") with the shell's code for it.
        # Not sys.exit: after some of these Ctrl-Cs (one in three, landing while
        # granian loads) CPython 3.11 ends even a sys.exit by killing itself with
        # SIGINT (status -2, seen with strace: SIG_DFL, then kill(getpid(),
        # SIGINT)), as if the KeyboardInterrupt caught here had been unhandled.
        # _serve's finally has stopped everything serve started by now: only the
        # log handlers and streams still need flushing.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(ABORT_EXIT_CODE)


def _serve(
    host: str | None,
    port: str | None,
    workers: str | None,
    http_workers: str | None,
    database_url: str | None,
) -> None:
    settings = _settings(
        host=host,
        port=port,
        workers=workers,
        http_workers=http_workers,
        database_url=database_url,
    )
    configure_logging(settings.log_level, settings.log_format)
    from overlord.server import (
        check_port_free,
        check_tls,
        prepare_metrics_dir,
        remove_metrics_dir,
        run_http_server,
    )
    from overlord.startup_probe import startup_step

    refusal = check_tls(settings) or check_port_free(settings.host, settings.port)
    if refusal is not None:
        click.echo(f"error: {refusal}", err=True)
        sys.exit(1)
    current, head = schema_status(settings)
    if current != head:
        if settings.database_url == DEFAULT_DATABASE_URL:
            # The embedded SQLite default upgrades itself: `make run` just works.
            from alembic import command

            with _alembic_errors(settings):
                command.upgrade(_alembic_config(settings), "head")
        else:
            click.echo(
                f"error: the database schema is at {current or 'empty'}, not {head}; "
                "run `overlord db upgrade` first",
                err=True,
            )
            sys.exit(1)
    from overlord.worker.supervisor import EmbeddedWorker

    _announce_store(settings)
    _export_settings(settings)
    # Before anything imports prometheus_client: every process serve starts then
    # records its metrics in this directory's files (multiprocess mode).
    metrics_dir = prepare_metrics_dir()
    supervisor = EmbeddedWorker(settings)

    def abort(*_: Any) -> None:
        supervisor.kill()
        os._exit(ABORT_EXIT_CODE)

    try:
        startup_step("supervisor")
        supervisor.start()
        startup_step("http")
        run_http_server(
            settings, on_stop=supervisor.begin_stop, on_abort=supervisor.kill
        )
    except KeyboardInterrupt:
        # Ctrl-C before granian's handlers: drain the worker all the same; another
        # Ctrl-C meanwhile stops at once, as it does once granian runs.
        signal.signal(signal.SIGINT, abort)
        raise
    finally:
        supervisor.stop()
        remove_metrics_dir(metrics_dir)


@main.command()
@click.option(
    "--capacity",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Task slots of this worker.",
)
@click.option(
    "--port",
    type=int,
    default=-1,
    help="Port shown in task locations (-1 = none).",
)
@click.option(
    "--duties/--no-duties",
    default=True,
    show_default=True,
    help="Also run the periodic duties (lease expiry, stale pending segments).",
)
@click.option("--die-with-parent", is_flag=True, hidden=True)
# serve's embedded worker only: one process per serve emits Druid's task counts.
@click.option("--task-count-metrics", is_flag=True, hidden=True)
@database_url_option
def worker(
    capacity: int,
    port: int,
    duties: bool,
    die_with_parent: bool,
    task_count_metrics: bool,
    database_url: str | None,
) -> None:
    """Run task slots against the shared store (any number, on any host)."""
    from overlord.worker.signals import defer_stop_signals

    # A stop signal during start-up drains the worker (python -m overlord defers
    # them earlier still; this covers the `overlord` console script).
    defer_stop_signals()
    from overlord.processes import die_with_parent as arm_parent_death
    from overlord.worker.loop import Worker

    if die_with_parent:
        arm_parent_death()
    settings = _settings(database_url=database_url)
    configure_logging(settings.log_level, settings.log_format)
    current, head = schema_status(settings)
    if current != head:
        click.echo(
            f"error: the database schema is at {current or 'empty'}, not {head}; "
            "run `overlord db upgrade` first",
            err=True,
        )
        sys.exit(1)
    _forget_main_script()
    runner = Worker(
        settings,
        capacity,
        run_duties=duties,
        port=port,
        task_count_metrics=task_count_metrics,
    )
    # serve's embedded worker (the only user of --die-with-parent) leaves Ctrl-C
    # to serve, which drains it with SIGTERM.
    runner.install_signal_handlers(interrupt=not die_with_parent)
    runner.run()


def _forget_main_script() -> None:
    """Keep task processes from re-running the ``overlord`` console script.

    multiprocessing sends each new process the main module's ``__file__`` when
    the main module was run as a script, and the process runs it again as
    ``__mp_main__`` before its target (``spawn._fixup_main_from_path``): importing
    overlord.cli, click and the servers, 39-46 ms of CPU per task process, 16 %
    of a worker's and its processes' py-spy samples in a noop burst (SQLite, 4
    slots). The forkserver's ``"__main__"`` preload would avoid it, but Python
    3.11 never hands the forkserver the path it needs. A task process's target
    lives in overlord.worker.child, so it needs nothing from this script; with
    ``python -m overlord`` the main module has a name and nothing is re-run.
    """
    main_module = sys.modules["__main__"]
    if getattr(main_module, "__spec__", None) is None:
        main_module.__dict__.pop("__file__", None)


# The client commands (submit, tasks, status, log, shutdown, …) talk HTTP only.
register_client_commands(main)

# Registered last: overlord.cli_auth reads this module's helpers when it runs.
from overlord.cli_auth import auth  # noqa: E402

main.add_command(auth)

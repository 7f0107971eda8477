"""The client side of the ``overlord`` command: ``submit``, ``tasks``, ``status``,
``log``, ``shutdown``, ``shutdown-all`` and ``pending-segments delete`` talk to a
running server over HTTP (``overlord.remote``), never to the store.

Every failure is one ``error: …`` line on stderr and exit code 1 (``submit --wait``
also exits 1 when the task ends FAILED); no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from overlord.config import SettingsError, load_settings
from overlord.remote import Remote, RemoteError

# How often --wait and --follow ask the server (Airflow's DruidHook polls every
# 10 s; a person watching a terminal wants faster).
POLL_SECONDS = 1.0
TERMINAL = ("SUCCESS", "FAILED")
STATES = ("running", "pending", "waiting", "complete")


def default_url() -> str:
    """The local server of these settings (``host``/``port``, as ``serve`` uses)."""
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    host = settings.host
    if host in ("", "0.0.0.0"):  # noqa: S104 - the address serve listens on
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _remote(url: str | None, user: str | None, cacert: str | None) -> Remote:
    auth: tuple[str, str] | None = None
    if user is not None:
        name, colon, password = user.partition(":")
        if not colon:
            password = click.prompt(
                f"Password for {name}", hide_input=True, err=True, default=""
            )
        auth = (name, password)
    return Remote(url or default_url(), auth=auth, verify=cacert or True)


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--user`` and ``--cacert``, shared by every client command."""
    command = click.option(
        "--cacert",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="CA certificate to verify an https server with.",
    )(command)
    command = click.option(
        "--user",
        "-u",
        default=None,
        metavar="USER[:PASSWORD]",
        help="Basic authentication, as curl's -u (asks for the password if absent).",
    )(command)
    return click.option(
        "--url",
        default=None,
        help="The server (default: this host's serve, http://HOST:PORT of the settings).",
    )(command)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RemoteError as error:
        raise click.ClickException(str(error)) from error


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# --- submit ---------------------------------------------------------------------


def _read_spec(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot read {path}: {error}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise click.ClickException(f"{path} is not JSON: {error}") from error


def rows_processed(reports: dict[str, Any] | None) -> int | None:
    """Rows processed so far from an ``ingestionStatsAndErrors`` report: the live
    report nests them under ``totals``, the final one does not (spec §1.6)."""
    if not reports:
        return None
    report = reports.get("ingestionStatsAndErrors")
    payload = report.get("payload") if isinstance(report, dict) else None
    stats = payload.get("rowStats") if isinstance(payload, dict) else None
    if not isinstance(stats, dict):
        return None
    totals = stats.get("totals", stats)
    build = totals.get("buildSegments") if isinstance(totals, dict) else None
    processed = build.get("processed") if isinstance(build, dict) else None
    return processed if isinstance(processed, int) else None


def progress_line(status: dict[str, Any], elapsed: float, rows: int | None) -> str:
    state = status.get("status") or status.get("statusCode") or "?"
    runner = status.get("runnerStatusCode") or "NONE"
    duration = status.get("duration")
    seconds = (
        duration / 1000 if isinstance(duration, int) and duration >= 0 else elapsed
    )
    line = f"{status.get('id')}: {state} (runner {runner}), {seconds:.1f} s"
    if rows is not None:
        line += f", {rows:,} rows processed"
    return line


class _Progress:
    """One line rewritten in place on a terminal; a line per change otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def show(self, line: str) -> None:
        if self.tty:
            click.echo(f"\r\x1b[2K{line}", nl=False, err=True)
        elif line.split(",")[0] != self.last.split(",")[0]:
            click.echo(line, err=True)
        self.last = line

    def done(self) -> None:
        if self.tty and self.last:
            click.echo("", err=True)


def _wait(remote: Remote, task_id: str) -> int:
    progress = _Progress()
    started = time.monotonic()
    status: dict[str, Any] = {}
    while True:
        status = remote.status(task_id)
        state = status.get("status") or status.get("statusCode")
        rows = rows_processed(remote.reports(task_id))
        progress.show(progress_line(status, time.monotonic() - started, rows))
        if state in TERMINAL:
            break
        time.sleep(POLL_SECONDS)
    progress.done()
    if state == "SUCCESS":
        click.echo(f"{task_id}: SUCCESS", err=True)
        return 0
    click.echo(
        f"{task_id}: FAILED: {status.get('errorMsg') or 'no error message'}", err=True
    )
    return 1


def _offer_shutdown(remote: Remote, task_id: str) -> None:
    """Ctrl-C during --wait: ask whether to shut the task down (the task runs on
    the server either way until told otherwise)."""
    # A second Ctrl-C at the prompt leaves without shutting down.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    click.echo("", err=True)
    try:
        answer = click.confirm(f"Shut down task {task_id}?", default=False, err=True)
    except (click.Abort, KeyboardInterrupt, EOFError):
        answer = False
    if answer:
        with _errors():
            remote.shutdown(task_id)
        click.echo(f"{task_id}: shutdown requested", err=True)
    else:
        click.echo(f"{task_id}: still running on the server", err=True)


@click.command()
@click.argument("spec", metavar="SPEC.json")
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the task until SUCCESS (exit 0) or FAILED (exit 1).",
)
@connection_options
def submit(
    spec: str, wait: bool, url: str | None, user: str | None, cacert: str | None
) -> None:
    """Submit a Druid task spec (a file, or - for stdin); prints the task id."""
    document = _read_spec(spec)
    remote = _remote(url, user, cacert)
    with _errors():
        task_id = remote.submit(document)
    click.echo(task_id)
    if not wait:
        return
    try:
        with _errors():
            code = _wait(remote, task_id)
    except KeyboardInterrupt:
        _offer_shutdown(remote, task_id)
        sys.exit(130)
    sys.exit(code)


# --- tasks and one task ---------------------------------------------------------

COLUMNS = (
    ("ID", "id"),
    ("TYPE", "type"),
    ("DATASOURCE", "dataSource"),
    ("STATUS", "status"),
    ("RUNNER", "runnerStatusCode"),
    ("CREATED", "createdTime"),
    ("DURATION", "duration"),
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as an aligned text table with the columns of the web console's task
    view (newest first, as the server lists them)."""
    cells = [[title for title, _ in COLUMNS]]
    for row in rows:
        line = []
        for _, key in COLUMNS:
            value = row.get(key)
            if key == "duration":
                value = (
                    ""
                    if not isinstance(value, int) or value < 0
                    else f"{value / 1000:.1f}s"
                )
            line.append("" if value is None else str(value))
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in cells
    )


@click.command()
@click.option(
    "--state", type=click.Choice(STATES), default=None, help="Only tasks in this state."
)
@click.option("--datasource", default=None, help="Only tasks of this datasource.")
@click.option(
    "--max",
    "max_tasks",
    type=click.IntRange(min=0),
    default=None,
    help="At most this many complete tasks.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="The server's JSON instead of a table."
)
@connection_options
def tasks(
    state: str | None,
    datasource: str | None,
    max_tasks: int | None,
    as_json: bool,
    url: str | None,
    user: str | None,
    cacert: str | None,
) -> None:
    """List tasks (GET /druid/indexer/v1/tasks)."""
    remote = _remote(url, user, cacert)
    with _errors():
        rows = remote.tasks(state, datasource, max_tasks)
    if as_json:
        _echo_json(rows)
    else:
        click.echo(table(rows))


@click.command()
@click.argument("task_id", metavar="ID")
@click.option(
    "--json", "as_json", is_flag=True, help="The server's JSON status object."
)
@connection_options
def status(
    task_id: str, as_json: bool, url: str | None, user: str | None, cacert: str | None
) -> None:
    """One task's status."""
    remote = _remote(url, user, cacert)
    with _errors():
        answer = remote.status(task_id)
    if as_json:
        _echo_json(answer)
        return
    width = max(len(key) for key in answer) if answer else 0
    for key, value in answer.items():
        text = json.dumps(value) if isinstance(value, dict | list) else value
        click.echo(f"{key.ljust(width)}  {'' if text is None else text}")


@click.command()
@click.argument("task_id", metavar="ID")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing new lines until the task ends."
)
@click.option(
    "--tail", type=click.IntRange(min=1), default=None, help="Only the last N bytes."
)
@connection_options
def log(
    task_id: str,
    follow: bool,
    tail: int | None,
    url: str | None,
    user: str | None,
    cacert: str | None,
) -> None:
    """A task's log (GET /druid/indexer/v1/task/{id}/log)."""
    remote = _remote(url, user, cacert)
    out = sys.stdout.buffer
    try:
        with _errors():
            _print_log(remote, task_id, follow, tail, out)
    except KeyboardInterrupt:
        sys.exit(130)


def _print_log(
    remote: Remote, task_id: str, follow: bool, tail: int | None, out: Any
) -> None:
    offset = -tail if tail else 0
    first = remote.log(task_id, offset)
    if first is None and not follow:
        raise RemoteError(f"No log was found for this task. [{task_id}]")
    seen = 0
    if first:
        out.write(first)
        out.flush()
        # A tail read starts somewhere: continue from the log's end.
        seen = len(remote.log(task_id, 0) or b"") if offset else len(first)
    while follow:
        finished = remote.status(task_id).get("status") in TERMINAL
        chunk = remote.log(task_id, seen)
        if chunk:
            out.write(chunk)
            out.flush()
            seen += len(chunk)
        if finished:
            return
        time.sleep(POLL_SECONDS)


@click.command()
@click.argument("task_id", metavar="ID")
@connection_options
def shutdown(
    task_id: str, url: str | None, user: str | None, cacert: str | None
) -> None:
    """Shut one task down (prints the server's answer)."""
    remote = _remote(url, user, cacert)
    with _errors():
        _echo_json(remote.shutdown(task_id))


@click.command("shutdown-all")
@click.argument("datasource")
@connection_options
def shutdown_all(
    datasource: str, url: str | None, user: str | None, cacert: str | None
) -> None:
    """Shut down every active task of a datasource."""
    remote = _remote(url, user, cacert)
    with _errors():
        _echo_json(remote.shutdown_all(datasource))


@click.group("pending-segments")
def pending_segments() -> None:
    """Pending segments of a datasource."""


@pending_segments.command("delete")
@click.argument("datasource")
@click.option("--interval", required=True, help="ISO-8601 interval, e.g. 2000/3000.")
@connection_options
def delete_pending(
    datasource: str,
    interval: str,
    url: str | None,
    user: str | None,
    cacert: str | None,
) -> None:
    """Delete the pending segments of DATASOURCE created in --interval."""
    remote = _remote(url, user, cacert)
    with _errors():
        _echo_json(remote.delete_pending_segments(datasource, interval))


def register(group: click.Group) -> None:
    commands: tuple[click.Command, ...] = (
        submit,
        tasks,
        status,
        log,
        shutdown,
        shutdown_all,
        pending_segments,
    )
    for command in commands:
        group.add_command(command)

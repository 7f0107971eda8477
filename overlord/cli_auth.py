"""``overlord auth …``: users, roles and permissions, straight in the database
(the same services as the HTTP management API; Druid's texts on conflicts).

Every command takes ``--database-url`` and the settings as ``serve`` does; a
refusal is one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from overlord.config import DEFAULT_DATABASE_URL, Settings
from overlord.errors import OverlordError
from overlord.services import auth as auth_service
from overlord.timeutil import utcnow

T = TypeVar("T")

database_url_option = click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL of the store (default: OVERLORD_DATABASE_URL, then "
    f"{DEFAULT_DATABASE_URL}).",
)


@click.group()
def auth() -> None:
    """Manage users, roles and permissions (basic security, issue 12)."""


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except OverlordError as error:
        raise click.ClickException(error.message) from error


def _run(database_url: str | None, fn: Callable[[Session], T]) -> T:
    from overlord.cli import _database_errors, _settings, schema_status
    from overlord.db import Database

    settings: Settings = _settings(database_url=database_url)
    with _database_errors(settings):
        current, head = schema_status(settings)
        if current != head:
            raise click.ClickException(
                f"the database schema is at {current or 'empty'}, not {head}; "
                "run `overlord db upgrade` first"
            )
        database = Database(settings)
        try:
            with _refusals():
                return database.run(fn, write=True)
        finally:
            database.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        text = sys.stdin.read()
        # One trailing newline is the line's end, not part of the password.
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _iterations(value: int | None) -> int:
    from overlord.cli import _settings

    return value if value is not None else _settings().auth_credential_iterations


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line).",
)
iterations_option = click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    help="PBKDF2 iterations (default: auth_credential_iterations).",
)


@auth.command("create-user")
@click.argument("name")
@password_stdin_option
@iterations_option
@database_url_option
def create_user(
    name: str, password_stdin: bool, iterations: int | None, database_url: str | None
) -> None:
    """Create a user; with --password-stdin also its password (else none: it
    cannot log in until set-password)."""
    password = _read_password(True) if password_stdin else None
    count = _iterations(iterations)

    def write(session: Session) -> None:
        now = utcnow()
        auth_service.create_user(session, name, now)
        if password is not None:
            auth_service.set_password(session, name, password, count, now)

    _run(database_url, write)


@auth.command("set-password")
@click.argument("name")
@password_stdin_option
@iterations_option
@database_url_option
def set_password(
    name: str, password_stdin: bool, iterations: int | None, database_url: str | None
) -> None:
    """Set (replace) a user's password."""
    password = _read_password(password_stdin)
    count = _iterations(iterations)
    _run(
        database_url,
        lambda session: auth_service.set_password(
            session, name, password, count, utcnow()
        ),
    )


@auth.command("delete-user")
@click.argument("name")
@database_url_option
def delete_user(name: str, database_url: str | None) -> None:
    """Delete a user and its role assignments."""
    _run(database_url, lambda session: auth_service.delete_user(session, name))


@auth.command("create-role")
@click.argument("role")
@database_url_option
def create_role(role: str, database_url: str | None) -> None:
    """Create a role without permissions."""
    _run(
        database_url, lambda session: auth_service.create_role(session, role, utcnow())
    )


@auth.command("delete-role")
@click.argument("role")
@database_url_option
def delete_role(role: str, database_url: str | None) -> None:
    """Delete a role; its users lose it."""
    _run(database_url, lambda session: auth_service.delete_role(session, role))


@auth.command("assign")
@click.argument("user")
@click.argument("role")
@database_url_option
def assign(user: str, role: str, database_url: str | None) -> None:
    """Give USER the role ROLE."""
    _run(database_url, lambda session: auth_service.assign_role(session, user, role))


@auth.command("unassign")
@click.argument("user")
@click.argument("role")
@database_url_option
def unassign(user: str, role: str, database_url: str | None) -> None:
    """Take ROLE from USER."""
    _run(database_url, lambda session: auth_service.unassign_role(session, user, role))


@auth.command("grant")
@click.argument("role")
@click.argument("resource_type", metavar="TYPE")
@click.argument("regex")
@click.argument("action", metavar="READ|WRITE")
@database_url_option
def grant(
    role: str, resource_type: str, regex: str, action: str, database_url: str | None
) -> None:
    """Add one permission to ROLE: TYPE (DATASOURCE, STATE, CONFIG, EXTERNAL,
    CLUSTER, …), a regex the whole name must match, READ or WRITE."""
    _run(
        database_url,
        lambda session: auth_service.grant(session, role, resource_type, regex, action),
    )


@auth.command("set-permissions")
@click.argument("role")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help='Druid\'s JSON array of {"resource":{"type","name"},"action"} ("-" = stdin).',
)
@database_url_option
def set_permissions(role: str, path: Path, database_url: str | None) -> None:
    """Replace ROLE's permissions with those of the file."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
        document = json.loads(text)
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path} is not JSON: {error}") from error
    with _refusals():
        permissions = auth_service.parse_permissions(document)
    _run(
        database_url,
        lambda session: auth_service.set_permissions(session, role, permissions),
    )


@auth.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@database_url_option
def list_state(as_json: bool, database_url: str | None) -> None:
    """Show users (with their roles) and roles (with their permissions)."""
    state = _run(database_url, auth_service.describe)
    if as_json:
        document: dict[str, Any] = {
            "users": {
                name: {"roles": roles, "hasPassword": state.has_password[name]}
                for name, roles in state.users.items()
            },
            "roles": {
                name: [auth_service.permission_document(p) for p in permissions]
                for name, permissions in state.roles.items()
            },
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo("users:")
    for name, roles in state.users.items():
        password = "" if state.has_password[name] else " (no password)"
        click.echo(f"  {name}{password}: {', '.join(roles) or '-'}")
    click.echo("roles:")
    for name, permissions in state.roles.items():
        click.echo(f"  {name}:")
        for p in permissions:
            click.echo(f"    {p.resource_type} {p.resource_name} {p.action}")

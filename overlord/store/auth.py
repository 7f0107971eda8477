"""SQL for users, roles, role assignments and permissions (Druid's basic-security
state, which Druid keeps as Smile maps in ``druid_config``; spec security.md §1.7).

Every server and worker reads the same rows, so a change is seen everywhere once
the servers' caches expire. Inserts of a name that may race go through a savepoint
and map the IntegrityError to the domain error, as ``store.tasks`` does for task ids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overlord.errors import (
    RoleAlreadyAssigned,
    RoleAlreadyExists,
    RoleNotAssigned,
    RoleNotFound,
    UserAlreadyExists,
    UserNotFound,
)
from overlord.store.models import AuthPermission, AuthRole, AuthUser, AuthUserRole


@dataclass(frozen=True)
class Credentials:
    """A stored password: PBKDF2-HMAC-SHA512 of it with this salt and count."""

    salt: bytes
    hash: bytes
    iterations: int


@dataclass(frozen=True)
class StoredUser:
    name: str
    credentials: Credentials | None


@dataclass(frozen=True)
class PermissionRow:
    """(resource type, resource-name regex, READ|WRITE)."""

    resource_type: str
    resource_name: str
    action: str


# ------------------------------------------------------------------------ reading


def get_user(session: Session, name: str) -> StoredUser | None:
    """The user and its credentials (None when it has none), or None if absent."""
    row = session.execute(
        select(
            AuthUser.password_salt, AuthUser.password_hash, AuthUser.password_iterations
        ).where(AuthUser.name == name)
    ).one_or_none()
    if row is None:
        return None
    salt, digest, iterations = row
    if salt is None or digest is None or iterations is None:
        return StoredUser(name, None)
    return StoredUser(name, Credentials(bytes(salt), bytes(digest), iterations))


def get_user_permissions(session: Session, name: str) -> list[PermissionRow]:
    """Every permission of every role of the user (role by role, in order)."""
    rows = session.execute(
        select(
            AuthPermission.resource_type,
            AuthPermission.resource_name,
            AuthPermission.action,
        )
        .join(AuthUserRole, AuthUserRole.role_name == AuthPermission.role_name)
        .where(AuthUserRole.user_name == name)
        .order_by(AuthPermission.role_name, AuthPermission.position)
    )
    return [PermissionRow(*row) for row in rows]


def list_users(session: Session) -> list[str]:
    return list(session.scalars(select(AuthUser.name).order_by(AuthUser.name)))


def list_roles(session: Session) -> list[str]:
    return list(session.scalars(select(AuthRole.name).order_by(AuthRole.name)))


def get_user_roles(session: Session, name: str) -> list[str]:
    """The user's role names.

    Raises:
        UserNotFound: no such user.
    """
    _require_user(session, name)
    return list(
        session.scalars(
            select(AuthUserRole.role_name)
            .where(AuthUserRole.user_name == name)
            .order_by(AuthUserRole.role_name)
        )
    )


def get_role_permissions(session: Session, role: str) -> list[PermissionRow]:
    """The role's permissions in the order they were set.

    Raises:
        RoleNotFound: no such role.
    """
    _require_role(session, role)
    rows = session.execute(
        select(
            AuthPermission.resource_type,
            AuthPermission.resource_name,
            AuthPermission.action,
        )
        .where(AuthPermission.role_name == role)
        .order_by(AuthPermission.position, AuthPermission.id)
    )
    return [PermissionRow(*row) for row in rows]


def get_role_users(session: Session, role: str) -> list[str]:
    """Names of the users holding the role.

    Raises:
        RoleNotFound: no such role.
    """
    _require_role(session, role)
    return list(
        session.scalars(
            select(AuthUserRole.user_name)
            .where(AuthUserRole.role_name == role)
            .order_by(AuthUserRole.user_name)
        )
    )


# ------------------------------------------------------------------------ writing


def insert_user(session: Session, name: str, now: dt.datetime) -> None:
    """Raises:
    UserAlreadyExists: the name is taken."""
    if not insert_user_if_absent(session, name, now):
        raise UserAlreadyExists(name)


def insert_user_if_absent(session: Session, name: str, now: dt.datetime) -> bool:
    """Insert a user without credentials; False when it already exists."""
    if session.scalar(select(AuthUser.name).where(AuthUser.name == name)) is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(
                insert(AuthUser).values(name=name, created_at=now, updated_at=now)
            )
    except IntegrityError:
        return False  # a concurrent insert of the same name won
    return True


def delete_user(session: Session, name: str) -> None:
    """Delete the user and its role assignments.

    Raises:
        UserNotFound: no such user.
    """
    session.execute(delete(AuthUserRole).where(AuthUserRole.user_name == name))
    if (
        not session.connection()
        .execute(delete(AuthUser).where(AuthUser.name == name))
        .rowcount
    ):
        raise UserNotFound(name)


def set_credentials(
    session: Session, name: str, credentials: Credentials, now: dt.datetime
) -> None:
    """Replace the user's password.

    Raises:
        UserNotFound: no such user.
    """
    statement = (
        update(AuthUser)
        .where(AuthUser.name == name)
        .values(_credential_values(credentials, now))
    )
    if not session.connection().execute(statement).rowcount:
        raise UserNotFound(name)


def set_credentials_if_absent(
    session: Session, name: str, credentials: Credentials, now: dt.datetime
) -> bool:
    """Give the user this password only if it has none (compare-and-set on a null
    hash, so an existing password is never changed); True when set."""
    statement = (
        update(AuthUser)
        .where(AuthUser.name == name, AuthUser.password_hash.is_(None))
        .values(_credential_values(credentials, now))
    )
    return bool(session.connection().execute(statement).rowcount)


def _credential_values(credentials: Credentials, now: dt.datetime) -> dict[str, object]:
    return {
        "password_salt": credentials.salt,
        "password_hash": credentials.hash,
        "password_iterations": credentials.iterations,
        "updated_at": now,
    }


def insert_role(session: Session, name: str, now: dt.datetime) -> None:
    """Raises:
    RoleAlreadyExists: the name is taken."""
    if not insert_role_if_absent(session, name, now):
        raise RoleAlreadyExists(name)


def insert_role_if_absent(session: Session, name: str, now: dt.datetime) -> bool:
    """Insert a role without permissions; False when it already exists."""
    if session.scalar(select(AuthRole.name).where(AuthRole.name == name)) is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(insert(AuthRole).values(name=name, created_at=now))
    except IntegrityError:
        return False
    return True


def delete_role(session: Session, name: str) -> None:
    """Delete the role, its permissions, and its assignment to every user (as
    Druid's deleteRole removes it from every user).

    Raises:
        RoleNotFound: no such role.
    """
    session.execute(delete(AuthUserRole).where(AuthUserRole.role_name == name))
    session.execute(delete(AuthPermission).where(AuthPermission.role_name == name))
    if (
        not session.connection()
        .execute(delete(AuthRole).where(AuthRole.name == name))
        .rowcount
    ):
        raise RoleNotFound(name)


def assign_role(session: Session, user: str, role: str) -> None:
    """Raises:
    RoleNotFound, UserNotFound: as Druid checks them, role first.
    RoleAlreadyAssigned: the user holds the role already."""
    _require_role(session, role)
    _require_user(session, user)
    try:
        with session.begin_nested():
            session.execute(insert(AuthUserRole).values(user_name=user, role_name=role))
    except IntegrityError:
        raise RoleAlreadyAssigned(user, role) from None


def unassign_role(session: Session, user: str, role: str) -> None:
    """Raises:
    RoleNotFound, UserNotFound: as Druid checks them, role first.
    RoleNotAssigned: the user does not hold the role."""
    _require_role(session, role)
    _require_user(session, user)
    statement = delete(AuthUserRole).where(
        AuthUserRole.user_name == user, AuthUserRole.role_name == role
    )
    if not session.connection().execute(statement).rowcount:
        raise RoleNotAssigned(user, role)


def set_permissions(
    session: Session, role: str, permissions: list[PermissionRow]
) -> None:
    """Replace the role's permissions (Druid's POST …/roles/{r}/permissions).

    Raises:
        RoleNotFound: no such role.
    """
    _lock_role(session, role)
    session.execute(delete(AuthPermission).where(AuthPermission.role_name == role))
    _insert_permissions(session, role, permissions, first=0)


def add_permissions(
    session: Session, role: str, permissions: list[PermissionRow]
) -> None:
    """Append permissions to the role's.

    Raises:
        RoleNotFound: no such role.
    """
    _lock_role(session, role)
    last = session.scalar(
        select(func.max(AuthPermission.position)).where(
            AuthPermission.role_name == role
        )
    )
    _insert_permissions(session, role, permissions, first=(last or 0) + 1)


def _insert_permissions(
    session: Session, role: str, permissions: list[PermissionRow], *, first: int
) -> None:
    if not permissions:
        return
    session.execute(
        insert(AuthPermission),
        [
            {
                "role_name": role,
                "position": first + offset,
                "resource_type": permission.resource_type,
                "resource_name": permission.resource_name,
                "action": permission.action,
            }
            for offset, permission in enumerate(permissions)
        ],
    )


def _lock_role(session: Session, role: str) -> None:
    # Row lock on the role: two concurrent replacements of its permissions run one
    # after the other instead of leaving the union (SQLite's writer lock does this).
    found = session.scalar(
        select(AuthRole.name).where(AuthRole.name == role).with_for_update()
    )
    if found is None:
        raise RoleNotFound(role)


def _require_user(session: Session, name: str) -> None:
    if session.scalar(select(AuthUser.name).where(AuthUser.name == name)) is None:
        raise UserNotFound(name)


def _require_role(session: Session, name: str) -> None:
    if session.scalar(select(AuthRole.name).where(AuthRole.name == name)) is None:
        raise RoleNotFound(name)

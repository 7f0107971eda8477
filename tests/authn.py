"""Helpers for the security tests: Basic headers, users with one role each."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable

from flask import Flask

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.services import auth as auth_service
from overlord.store import auth as auth_store
from overlord.timeutil import utcnow

ADMIN_PASSWORD = "admin-secret"
INTERNAL_PASSWORD = "internal-secret"
# Low iterations keep the tests quick; test_passwords checks Druid's default.
TEST_ITERATIONS = 1000

Perm = tuple[str, str, str]  # (type, regex, action)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def auth_settings(settings: Settings, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "auth_enabled": True,
        "auth_initial_admin_password": ADMIN_PASSWORD,
        "auth_initial_internal_client_password": INTERNAL_PASSWORD,
        # Every change is seen at once (the TTL has its own test).
        "auth_cache_ttl": dt.timedelta(0),
    }
    values.update(overrides)
    return dataclasses.replace(settings, **values)  # type: ignore[arg-type]


def auth_app(settings: Settings, db: Database, **overrides: object) -> Flask:
    app = create_app(auth_settings(settings, **overrides), database=db)
    app.testing = True
    return app


def add_user(
    db: Database,
    name: str,
    password: str | None = None,
    permissions: Iterable[Perm] = (),
    *,
    role: str | None = None,
) -> None:
    """A user holding one role (named after it unless ``role``) with ``permissions``."""
    role = role or f"{name}-role"
    perms = [auth_service.check_permission(*p) for p in permissions]

    def write(session: object) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        now = utcnow()
        auth_store.insert_user(session, name, now)
        if password is not None:
            auth_store.set_credentials(
                session,
                name,
                auth_service.new_credentials(password, TEST_ITERATIONS),
                now,
            )
        auth_store.insert_role_if_absent(session, role, now)
        auth_store.add_permissions(session, role, perms)
        auth_store.assign_role(session, name, role)

    db.run(write, write=True)

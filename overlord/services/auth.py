"""Basic authentication and Druid's permissions (spec security.md §1, §2, §6.1).

Passwords are PBKDF2-HMAC-SHA512 as Druid's ``PasswordHashGenerator`` makes them
(32-byte salt, 64-byte key, iterations per user), so the bytes equal Java's.
Permissions are Druid's ``(resource type, full-match name regex, READ|WRITE)``;
READ never implies WRITE, and a user holds only roles.

The per-process caches live here (no Flask): ``PasswordVerifier`` keeps derived keys
so a request does not pay the hash each time, ``TtlCache`` keeps each user's
credentials and permissions for ``auth_cache_ttl``. No SQL here: ``store.auth``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from overlord.errors import InvalidInput, InvalidPermission, TaskNotFound
from overlord.services.ids import validate_id
from overlord.store import auth as auth_store
from overlord.store import tasks as task_store
from overlord.store.auth import Credentials, PermissionRow

__all__ = ["Credentials", "PermissionRow"]

# --------------------------------------------------------------------- vocabulary

READ, WRITE = "READ", "WRITE"
ACTIONS = (READ, WRITE)
DATASOURCE, STATE, CONFIG, EXTERNAL = "DATASOURCE", "STATE", "CONFIG", "EXTERNAL"
# The _tasks surface: names are OpenSearch action names (issue 12).
CLUSTER = "CLUSTER"
# Druid's ResourceType.knownTypes plus CLUSTER: the superuser roles get `.*` on each.
KNOWN_TYPES = (
    DATASOURCE,
    "VIEW",
    CONFIG,
    STATE,
    "SYSTEM_TABLE",
    "QUERY_CONTEXT",
    EXTERNAL,
    CLUSTER,
)
ADMIN_USER, INTERNAL_USER = "admin", "druid_system"


@dataclass(frozen=True)
class ResourceAction:
    """One check: an action on a named resource of a type."""

    resource_type: str
    name: str
    action: str


@dataclass(frozen=True)
class Grant:
    resource_type: str
    pattern: re.Pattern[str]
    action: str


@dataclass(frozen=True)
class Principal:
    """A user as the request pipeline needs it: credentials and compiled grants."""

    name: str
    credentials: Credentials | None
    grants: tuple[Grant, ...]

    def allows(self, resource_type: str, name: str, action: str) -> bool:
        """Druid's BasicRoleBasedAuthorizer: the type and action equal, the regex
        matches the whole name (Java's ``Matcher.matches``)."""
        return any(
            grant.action == action
            and grant.resource_type == resource_type
            and grant.pattern.fullmatch(name) is not None
            for grant in self.grants
        )


def load_principal(session: Session, name: str) -> Principal | None:
    """The user with its credentials and the grants of all its roles, or None."""
    user = auth_store.get_user(session, name)
    if user is None:
        return None
    grants = []
    for row in auth_store.get_user_permissions(session, name):
        try:
            pattern = re.compile(row.resource_name)
        except re.error:
            # Druid skips a stored permission it cannot read; this one was checked
            # when set, so only a hand-edited row lands here.
            continue
        grants.append(Grant(row.resource_type, pattern, row.action))
    return Principal(name, user.credentials, tuple(grants))


# ---------------------------------------------------------------------- passwords

SALT_BYTES = 32
KEY_BYTES = 64
DEFAULT_ITERATIONS = 10000


def hash_password(password: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2WithHmacSHA512 over the password's UTF-8 bytes, 512-bit key."""
    return hashlib.pbkdf2_hmac(
        "sha512", password.encode("utf-8"), salt, iterations, KEY_BYTES
    )


def new_credentials(password: str, iterations: int) -> Credentials:
    """A fresh random salt and the password's hash, as Druid stores them.

    Raises:
        InvalidInput: an empty password, or iterations below 1.
    """
    if not password:
        raise InvalidInput("Cannot assign empty password.")
    if iterations < 1:
        raise InvalidInput(f"Invalid iterations [{iterations}]: must be at least 1.")
    salt = secrets.token_bytes(SALT_BYTES)
    return Credentials(salt, hash_password(password, salt, iterations), iterations)


class PasswordVerifier:
    """Checks passwords against stored credentials, keeping derived keys.

    As Druid's hash cache: the key is (SHA-256 of a per-process pepper and the
    password, salt, iterations), so plaintext never enters the cache; keys of right
    and wrong passwords alike are kept, at most ``size`` for ``seconds`` each.
    """

    def __init__(self, size: int = 1000, seconds: float = 3600.0) -> None:
        self._pepper = secrets.token_bytes(32)
        self._keys: OrderedDict[tuple[bytes, bytes, int], tuple[float, bytes]] = (
            OrderedDict()
        )
        self._size, self._seconds = size, seconds
        self._lock = threading.Lock()

    def verify(self, password: str, credentials: Credentials) -> bool:
        digest = hashlib.sha256(self._pepper + password.encode("utf-8")).digest()
        key = (digest, credentials.salt, credentials.iterations)
        now = time.monotonic()
        with self._lock:
            found = self._keys.get(key)
            if found is not None and found[0] > now:
                self._keys.move_to_end(key)
                derived: bytes | None = found[1]
            else:
                derived = None
        if derived is None:
            derived = hash_password(password, credentials.salt, credentials.iterations)
            with self._lock:
                self._keys[key] = (now + self._seconds, derived)
                self._keys.move_to_end(key)
                while len(self._keys) > self._size:
                    self._keys.popitem(last=False)
        return hmac.compare_digest(derived, credentials.hash)


class Outcome(enum.Enum):
    AUTHENTICATED = "authenticated"
    # Unknown user, or a user without credentials: Druid's "Unauthorized".
    UNKNOWN_USER = "unknown user"
    # Druid's BasicSecurityAuthenticationException: "User authentication failed."
    WRONG_PASSWORD = "wrong password"  # noqa: S105 - an outcome, not a password


def authenticate(
    principal: Principal | None, password: str, verifier: PasswordVerifier
) -> Outcome:
    if principal is None or principal.credentials is None:
        return Outcome.UNKNOWN_USER
    if verifier.verify(password, principal.credentials):
        return Outcome.AUTHENTICATED
    return Outcome.WRONG_PASSWORD


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A bounded map whose entries live ``seconds``: what one server keeps of the
    shared security rows (and of task → datasource) between database reads."""

    def __init__(self, seconds: float, size: int = 10000) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._seconds, self._size = seconds, size
        self._lock = threading.Lock()

    def peek(self, key: K) -> V | None:
        """The live value of ``key``, or None."""
        with self._lock:
            found = self._entries.get(key)
        if found is not None and found[0] > time.monotonic():
            return found[1]
        return None

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self._seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, key: K, load: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] > now:
                return found[1]
        value = load()
        if self._seconds > 0:
            with self._lock:
                self._entries[key] = (now + self._seconds, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
        return value


# -------------------------------------------------------------------- permissions


def check_permission(resource_type: Any, name: Any, action: Any) -> PermissionRow:
    """One permission as Druid's ResourceAction JSON binds it (action in any case).

    Raises:
        InvalidPermission: a missing or non-text field, an unknown action, or a
            regex that does not compile.
    """
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidPermission("Invalid permission, resource type must be a string.")
    if len(resource_type) > 64:
        raise InvalidPermission(
            f"Invalid permission, resource type[{resource_type}] is too long."
        )
    if not isinstance(name, str):
        raise InvalidPermission("Invalid permission, resource name must be a string.")
    if not isinstance(action, str) or action.upper() not in ACTIONS:
        raise InvalidPermission(
            f"Invalid permission, action[{action}] must be one of [READ, WRITE]."
        )
    try:
        re.compile(name)
    except re.error:
        raise InvalidPermission(
            f"Invalid permission, resource name regex[{name}] does not compile."
        ) from None
    return PermissionRow(resource_type, name, action.upper())


def parse_permissions(document: Any) -> list[PermissionRow]:
    """Druid's permission list: ``[{"resource":{"name","type"},"action"}, …]``.

    Raises:
        InvalidPermission: not such a list, or a permission Druid refuses.
    """
    if not isinstance(document, list):
        raise InvalidPermission(
            "Invalid permissions: expected a JSON array of "
            '{"resource":{"name":…,"type":…},"action":…}'
        )
    permissions = []
    for item in document:
        resource = item.get("resource") if isinstance(item, dict) else None
        if not isinstance(resource, dict):
            raise InvalidPermission(
                "Invalid permission: each must be an object with a resource object."
            )
        permissions.append(
            check_permission(
                resource.get("type"), resource.get("name"), item.get("action")
            )
        )
    return permissions


def superuser_permissions() -> list[PermissionRow]:
    return [
        PermissionRow(resource_type, ".*", action)
        for resource_type in KNOWN_TYPES
        for action in ACTIONS
    ]


def seed_initial_users(
    session: Session,
    *,
    admin_password: str,
    internal_password: str,
    now: dt.datetime,
) -> None:
    """Druid's Coordinator start-up state, insert-if-absent and never an update:
    roles ``admin`` and ``druid_system`` with every permission, the users holding
    them, and each user's initial password only if it has none (hashed with 10000
    iterations whatever ``auth_credential_iterations`` says, as Druid does).
    Safe to run from several processes at once."""
    for name, password in (
        (ADMIN_USER, admin_password),
        (INTERNAL_USER, internal_password),
    ):
        if auth_store.insert_role_if_absent(session, name, now):
            auth_store.set_permissions(session, name, superuser_permissions())
        if auth_store.insert_user_if_absent(session, name, now):
            auth_store.assign_role(session, name, name)
        if password:
            stored = auth_store.get_user(session, name)
            if stored is not None and stored.credentials is None:
                auth_store.set_credentials_if_absent(
                    session, name, new_credentials(password, DEFAULT_ITERATIONS), now
                )


# ------------------------------------------------------------------ task resources


def task_datasource(session: Session, task_id: str) -> str:
    """The datasource a task route authorizes against (Druid's TaskResourceFilter).

    Raises:
        InvalidTaskId: an id Druid's filter refuses (400 before the lookup).
        TaskNotFound: no such task (404 comes before 403).
    """
    validate_id("taskId", task_id)
    datasource = (
        None if "\x00" in task_id else task_store.get_task_datasource(session, task_id)
    )
    if datasource is None:
        raise TaskNotFound(task_id)
    return datasource


# Types whose input sources are known (Druid's Task.getInputSourceResources).
_NO_INPUT_TYPES = frozenset({"noop", "kill", "compact", "archive", "move", "restore"})
_INPUT_SOURCE_TYPES = frozenset(
    {
        "index",
        "index_parallel",
        "single_phase_sub_task",
        "partial_dimension_cardinality",
    }
)


def submit_resource_actions(
    type_name: str,
    document: dict[str, Any],
    datasource: str,
    *,
    input_source_security: bool,
) -> list[ResourceAction]:
    """What ``POST /task`` needs (OverlordResource.getNeededResourceActionsForTask):
    DATASOURCE WRITE on the task's datasource; with input-source security also
    EXTERNAL READ on each input source type.

    Raises:
        InvalidInput: input-source security is on and the type cannot name its
            input sources (Druid's text).
    """
    needed = [ResourceAction(DATASOURCE, datasource, WRITE)]
    if not input_source_security or type_name in _NO_INPUT_TYPES:
        return needed
    if type_name not in _INPUT_SOURCE_TYPES:
        raise InvalidInput(
            f"Task type [{type_name}], does not support input source based security"
        )
    spec = document.get("spec")
    io_config = spec.get("ioConfig") if isinstance(spec, dict) else None
    source = io_config.get("inputSource") if isinstance(io_config, dict) else None
    for name in _input_source_types(source):
        needed.append(ResourceAction(EXTERNAL, name, READ))
    return needed


def _input_source_types(source: Any) -> list[str]:
    """An input source's type names; ``combining`` is the union of its delegates'."""
    if not isinstance(source, dict) or not isinstance(source.get("type"), str):
        return []
    if source["type"] == "combining":
        names: list[str] = []
        for delegate in source.get("delegates") or []:
            names += [n for n in _input_source_types(delegate) if n not in names]
        return names
    return [source["type"]]


# -------------------------------------------------------------------- management


def create_user(session: Session, name: str, now: dt.datetime) -> None:
    """Raises:
    UserAlreadyExists: the name is taken."""
    auth_store.insert_user(session, name, now)


# The other management operations are the store's own, under service names (their
# docstrings name the errors): the CLI and the HTTP API call these.
delete_user = auth_store.delete_user
create_user_if_absent = auth_store.insert_user_if_absent
create_role = auth_store.insert_role
delete_role = auth_store.delete_role
assign_role = auth_store.assign_role
unassign_role = auth_store.unassign_role
set_permissions = auth_store.set_permissions
get_user = auth_store.get_user
list_users = auth_store.list_users
list_roles = auth_store.list_roles
get_user_roles = auth_store.get_user_roles
get_role_permissions = auth_store.get_role_permissions
get_role_users = auth_store.get_role_users


def set_password(
    session: Session, name: str, password: str, iterations: int, now: dt.datetime
) -> None:
    """Raises:
    UserNotFound: no such user.
    InvalidInput: an empty password."""
    auth_store.set_credentials(
        session, name, new_credentials(password, iterations), now
    )


def grant(
    session: Session, role: str, resource_type: str, regex: str, action: str
) -> None:
    """Append one permission to a role.

    Raises:
        RoleNotFound: no such role.
        InvalidPermission: Druid would refuse it.
    """
    permission = check_permission(resource_type, regex, action)
    auth_store.add_permissions(session, role, [permission])


@dataclass(frozen=True)
class SecurityState:
    """Everything ``overlord auth list`` shows."""

    users: dict[str, list[str]]  # user → roles
    has_password: dict[str, bool]
    roles: dict[str, list[PermissionRow]]


def describe(session: Session) -> SecurityState:
    users, passwords = {}, {}
    for name in auth_store.list_users(session):
        users[name] = auth_store.get_user_roles(session, name)
        stored = auth_store.get_user(session, name)
        passwords[name] = stored is not None and stored.credentials is not None
    roles = {
        name: auth_store.get_role_permissions(session, name)
        for name in auth_store.list_roles(session)
    }
    return SecurityState(users, passwords, roles)


def permission_document(permission: PermissionRow) -> dict[str, Any]:
    """Druid's simplified ResourceAction JSON."""
    return {
        "resource": {
            "name": permission.resource_name,
            "type": permission.resource_type,
        },
        "action": permission.action,
    }

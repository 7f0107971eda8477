"""The authorization checks route declarations name (``check=…`` in
``api/routes.py``; spec security.md §1, §3, §6.1). Data only: ``api/security.py``
enforces them in its ``before_request`` hook when auth is on. Which route needs which
check: druid-overlord.md §6, security.md §1.4 and §3.2.
"""

from __future__ import annotations

from dataclasses import dataclass

from overlord.services.auth import CONFIG, STATE


@dataclass(frozen=True)
class Unsecured:
    """No authentication, no authorization (Druid's UnsecuredResourceFilter)."""


@dataclass(frozen=True)
class AuthenticatedOnly:
    """Authentication only: the route answers an error whatever it is asked (a
    wrong method, an unknown ``_tasks`` path), or its view does the check."""

    why: str


@dataclass(frozen=True)
class Fixed:
    """A fixed resource; ``action`` None = from the method (GET/HEAD ⇒ READ, else
    WRITE, as Druid's AbstractResourceFilter). ``text``: the 403 is Druid's
    text/plain form."""

    resource_type: str
    name: str
    action: str | None = None
    text: bool = False


@dataclass(frozen=True)
class TaskResource:
    """DATASOURCE of the task named by the path (Druid's TaskResourceFilter): the
    id is validated and looked up first (400, 404), then authorized (403)."""

    action: str | None = None


@dataclass(frozen=True)
class PathDatasource:
    """DATASOURCE named by a path argument, each action in turn."""

    argument: str
    actions: tuple[str, ...] | None = None  # None = from the method


@dataclass(frozen=True)
class InternalOrState:
    """The internal identity ``druid_system``, or STATE WRITE (``POST /action``)."""


@dataclass(frozen=True)
class ClusterAction:
    """An OpenSearch action on the ``_tasks`` surface: CLUSTER READ for
    ``cluster:monitor/*``, WRITE otherwise; never filtered per row."""

    name: str


Check = (
    Unsecured
    | AuthenticatedOnly
    | Fixed
    | TaskResource
    | PathDatasource
    | InternalOrState
    | ClusterAction
)

STATE_RESOURCE = Fixed(STATE, "STATE")
CONFIG_RESOURCE = Fixed(CONFIG, "CONFIG")
# Druid's BasicSecurityResourceFilter: Resource("security", CONFIG), text/plain 403.
SECURITY_RESOURCE = Fixed(CONFIG, "security", text=True)
WRONG_METHOD = AuthenticatedOnly("answers 405 to every request")


def in_view(what: str) -> AuthenticatedOnly:
    """Authentication here; the view authorizes ``what`` once it has the parsed
    body or the rows."""
    return AuthenticatedOnly("the view authorizes: " + what)


CHECK_TYPES = (
    Unsecured,
    AuthenticatedOnly,
    Fixed,
    TaskResource,
    PathDatasource,
    InternalOrState,
    ClusterAction,
)

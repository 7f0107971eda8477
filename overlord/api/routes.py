"""The one seam at the HTTP edge (issue 11): every route is declared here, with its
authorization check and its OpenAPI operation, or it is not served.

A view module declares a route right above its view::

    @routes.get(bp, "/task/<path:task_id>/status", check=TaskResource(), doc=Operation(…))
    def get_task_status(task_id: str) -> Response: …

``route`` registers the Flask view on the blueprint and records the route's
``check`` (``api/checks.py``) and ``doc`` (``api/docs.py``) in one registry keyed by
Flask endpoint. Three readers use that registry and nothing else:

- ``api/security.py``: the before_request hook enforces the check (auth on);
- ``api/openapi.py``: the document describes every rule with its operation;
- ``api/metrics.py``: a declared route is labelled by its URL template,
  anything else ``<unmatched>``.

Both keywords are required: a declaration without them, or with something that is
not a check or an operation, raises at import; ``verify`` (called by
``create_app``) raises when the app's URL map holds an endpoint that never came
through here. At run time an undeclared endpoint added later is still refused by
the security hook, as Druid's PreResponseAuthorizationCheckFilter refuses a route
that recorded no check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask
from werkzeug.routing import Map, Rule
from werkzeug.routing.matcher import StateMachineMatcher

from overlord.api.checks import CHECK_TYPES, Check
from overlord.api.docs import Operation
from overlord.metrics import UNMATCHED_ROUTE

View = TypeVar("View", bound=Callable[..., Any])


class RouteDeclarationError(Exception):
    """A route declared without its check or its operation, declared twice with
    different ones, or served without a declaration."""


@dataclass(frozen=True)
class Declared:
    check: Check
    doc: Operation


# Flask endpoint ("blueprint.view") → its declaration. Blueprints are module
# singletons and declare their routes at import, so one registry serves every app.
_DECLARED: dict[str, Declared] = {}


def add(
    bp: Blueprint,
    rule: str,
    view: Callable[..., Any],
    methods: Iterable[str],
    *,
    check: Check,
    doc: Operation,
    endpoint: str | None = None,
) -> None:
    """Register ``view`` for ``rule`` on ``bp`` and declare its check and operation.

    Raises:
        RouteDeclarationError: ``check`` or ``doc`` is missing or of the wrong
            kind, or the endpoint was declared before with other ones.
    """
    name = endpoint or view.__name__
    qualified = f"{bp.name}.{name}"
    if not isinstance(check, CHECK_TYPES):
        raise RouteDeclarationError(
            f"route {rule!r} ({qualified}) declares no authorization check: "
            f"got {check!r}, want one of api.checks"
        )
    if not isinstance(doc, Operation):
        raise RouteDeclarationError(
            f"route {rule!r} ({qualified}) declares no OpenAPI operation: "
            f"got {doc!r}, want an api.docs.Operation"
        )
    declared = Declared(check, doc)
    previous = _DECLARED.get(qualified)
    if previous is not None and previous != declared:
        # One view may serve several rules (_tasks/_cancel), never with two stories.
        raise RouteDeclarationError(
            f"{qualified} is declared twice with different checks or operations"
        )
    bp.add_url_rule(rule, endpoint=name, view_func=view, methods=list(methods))
    _DECLARED[qualified] = declared


def route(
    bp: Blueprint,
    rule: str,
    methods: Iterable[str],
    *,
    check: Check,
    doc: Operation,
    endpoint: str | None = None,
) -> Callable[[View], View]:
    """The decorator form of ``add``."""
    methods = list(methods)

    def register(view: View) -> View:
        add(bp, rule, view, methods, check=check, doc=doc, endpoint=endpoint)
        return view

    return register


def get(
    bp: Blueprint, rule: str, *, check: Check, doc: Operation
) -> Callable[[View], View]:
    return route(bp, rule, ["GET"], check=check, doc=doc)


def post(
    bp: Blueprint, rule: str, *, check: Check, doc: Operation
) -> Callable[[View], View]:
    return route(bp, rule, ["POST"], check=check, doc=doc)


def delete(
    bp: Blueprint, rule: str, *, check: Check, doc: Operation
) -> Callable[[View], View]:
    return route(bp, rule, ["DELETE"], check=check, doc=doc)


def declared(endpoint: str) -> Declared | None:
    """The declaration of a Flask endpoint; None when it never came through here."""
    return _DECLARED.get(endpoint)


def check_of(endpoint: str) -> Check | None:
    found = _DECLARED.get(endpoint)
    return found.check if found is not None else None


def label(rule: Rule | None) -> str:
    """The metrics label of a request's rule: its URL template when declared (never
    the path: a task id in a label would make one series per task, the cardinality
    blow-up of Druid issue #14638), ``<unmatched>`` otherwise."""
    if rule is None or rule.endpoint not in _DECLARED:
        return UNMATCHED_ROUTE
    return rule.rule


def endpoints() -> frozenset[str]:
    return frozenset(_DECLARED)


def verify(app: Flask) -> None:
    """Refuse an app serving a route that was not declared here.

    Raises:
        RouteDeclarationError: naming every undeclared endpoint.
    """
    missing = sorted(
        {rule.endpoint for rule in app.url_map.iter_rules()} - set(_DECLARED)
    )
    if missing:
        raise RouteDeclarationError(
            "routes served without a check and an OpenAPI operation (declare them "
            f"through overlord.api.routes): {', '.join(missing)}"
        )


# Matches remembered per process, at most this many (then forgotten all at once).
MATCH_CACHE_SIZE = 4096


class _RememberingMatcher(StateMachineMatcher):
    """werkzeug's rule matcher, remembering each successful match by (domain, path,
    method, websocket): a match depends on nothing else once the map is built.

    A client polls the same path over and over (Airflow's DruidHook, every few
    seconds per running task), and ``/task/<path:task_id>/status`` costs
    werkzeug's state machine 10.4 µs per match (``/status/health`` 2.2 µs):
    remembered, 1.1 µs. Misses (404, 405, redirects) raise as before and are not
    remembered. Each hit hands out its own copy of the view arguments (Flask
    passes them on as the view's keyword arguments)."""

    def __init__(self, merge_slashes: bool) -> None:
        super().__init__(merge_slashes)
        self._remembered: dict[
            tuple[str, str, str, bool], tuple[Rule, dict[str, Any]]
        ] = {}

    def add(self, rule: Rule) -> None:
        self._remembered.clear()
        super().add(rule)

    def update(self) -> None:
        self._remembered.clear()
        super().update()

    def match(
        self, domain: str, path: str, method: str, websocket: bool
    ) -> tuple[Rule, dict[str, Any]]:
        key = (domain, path, method, websocket)
        found = self._remembered.get(key)
        if found is not None:
            return found[0], dict(found[1])
        rule, values = super().match(domain, path, method, websocket)
        if len(self._remembered) >= MATCH_CACHE_SIZE:
            self._remembered.clear()  # a dict's clear is atomic: threads are safe
        self._remembered[key] = (rule, dict(values))
        return rule, dict(values)


def remember_matches(url_map: Map) -> None:
    """Give ``url_map`` the remembering matcher (``_RememberingMatcher``), when its
    matcher is werkzeug's state machine (werkzeug 2.2 and later): with any
    other, matching stays as werkzeug does it."""
    current = getattr(url_map, "_matcher", None)
    if type(current) is not StateMachineMatcher:
        return
    remembering = _RememberingMatcher(url_map.merge_slashes)
    for rule in url_map.iter_rules():
        if not rule.build_only:
            remembering.add(rule)
    remembering.update()
    url_map._matcher = remembering

"""The one seam at the HTTP edge (``overlord/api/routes.py``): a route cannot be
served without its authorization check and its OpenAPI operation."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask
from werkzeug.routing import Map, Rule

from overlord.api import routes
from overlord.api.checks import STATE_RESOURCE, Unsecured
from overlord.api.docs import Operation, text_answer

DOC = Operation("A test route.", "Test", {"200": text_answer("Text.")})


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test routes below never leak into the app's registry.
    monkeypatch.setattr(routes, "_DECLARED", dict(routes._DECLARED))


def _view() -> str:
    return "ok"


def test_a_route_without_a_check_raises_and_is_not_registered() -> None:
    bp = Blueprint("seam_no_check", __name__)

    with pytest.raises(routes.RouteDeclarationError) as raised:
        routes.add(bp, "/x", _view, ["GET"], check=None, doc=DOC)  # type: ignore[arg-type]

    assert str(raised.value) == (
        "route '/x' (seam_no_check._view) declares no authorization check: "
        "got None, want one of api.checks"
    )
    assert bp.deferred_functions == []
    assert routes.declared("seam_no_check._view") is None


def test_a_route_without_an_operation_raises_and_is_not_registered() -> None:
    bp = Blueprint("seam_no_doc", __name__)

    with pytest.raises(routes.RouteDeclarationError) as raised:

        @routes.get(bp, "/x", check=Unsecured(), doc=None)  # type: ignore[arg-type]
        def view() -> str:
            return "ok"

    assert str(raised.value) == (
        "route '/x' (seam_no_doc.view) declares no OpenAPI operation: "
        "got None, want an api.docs.Operation"
    )
    assert bp.deferred_functions == []


def test_check_and_doc_are_required_keywords() -> None:
    bp = Blueprint("seam_keywords", __name__)

    with pytest.raises(TypeError, match="check"):
        routes.get(bp, "/x", doc=DOC)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="doc"):
        routes.post(bp, "/x", check=Unsecured())  # type: ignore[call-arg]


def test_one_view_on_two_rules_must_tell_one_story() -> None:
    bp = Blueprint("seam_twice", __name__)
    routes.add(bp, "/a", _view, ["GET"], check=Unsecured(), doc=DOC)
    routes.add(bp, "/b", _view, ["GET"], check=Unsecured(), doc=DOC)

    with pytest.raises(routes.RouteDeclarationError) as raised:
        routes.add(bp, "/c", _view, ["GET"], check=STATE_RESOURCE, doc=DOC)

    assert str(raised.value) == (
        "seam_twice._view is declared twice with different checks or operations"
    )
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(bp)
    assert sorted(r.rule for r in app.url_map.iter_rules()) == ["/a", "/b"]


def test_an_app_serving_an_undeclared_route_is_refused() -> None:
    declared = Blueprint("seam_declared", __name__)
    routes.add(declared, "/declared", _view, ["GET"], check=Unsecured(), doc=DOC)
    bare = Blueprint("seam_bare", __name__)
    bare.add_url_rule("/bare", view_func=_view)
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(declared)
    routes.verify(app)

    app.register_blueprint(bare)
    with pytest.raises(routes.RouteDeclarationError) as raised:
        routes.verify(app)

    assert str(raised.value) == (
        "routes served without a check and an OpenAPI operation (declare them "
        "through overlord.api.routes): seam_bare._view"
    )


def test_metrics_label_is_the_template_of_a_declared_route_only() -> None:
    declared = Blueprint("seam_label", __name__, url_prefix="/p")
    routes.add(
        declared, "/task/<path:task_id>", _view, ["GET"], check=Unsecured(), doc=DOC
    )
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(declared)
    app.add_url_rule("/bare/<name>", "bare", _view)
    adapter = app.url_map.bind("localhost")

    rule, _ = adapter.match("/p/task/abc", return_rule=True)
    assert routes.label(rule) == "/p/task/<path:task_id>"
    rule, _ = adapter.match("/bare/abc", return_rule=True)
    assert routes.label(rule) == "<unmatched>"
    assert routes.label(None) == "<unmatched>"


def _remembering_app() -> Flask:
    app = Flask("remembering")
    app.url_map.strict_slashes = False

    @app.get("/task/<path:task_id>/status")
    def status(task_id: str) -> str:
        return task_id

    @app.post("/task")
    def submit() -> str:
        return "posted"

    routes.remember_matches(app.url_map)
    return app


def test_matches_are_remembered_and_each_gets_its_own_view_arguments() -> None:
    app = _remembering_app()
    matcher = app.url_map._matcher
    assert isinstance(matcher, routes._RememberingMatcher)
    adapter = app.url_map.bind("localhost")

    rule, values = adapter.match("/task/a%2Fb/status", return_rule=True)
    values["task_id"] = "mutated by a view"
    again, values_again = adapter.match("/task/a%2Fb/status", return_rule=True)

    assert again is rule
    assert values_again == {"task_id": "a%2Fb"}
    assert list(matcher._remembered) == [("", "/task/a%2Fb/status", "GET", False)]
    client = app.test_client()
    assert client.get("/task/x/y/status").text == "x/y"
    assert client.get("/task/x/y/status").text == "x/y"


def test_misses_raise_as_before_and_are_not_remembered() -> None:
    app = _remembering_app()
    client = app.test_client()

    assert client.get("/nothing").status_code == 404
    assert client.get("/task").status_code == 405
    allowed = client.get("/task").headers["Allow"]
    assert sorted(allowed.split(", ")) == ["OPTIONS", "POST"]  # werkzeug: a set
    assert app.url_map._matcher._remembered == {}  # type: ignore[attr-defined]


def test_a_rule_added_later_forgets_what_was_remembered() -> None:
    url_map = Map([Rule("/task/<path:task_id>/status", endpoint="status")])
    routes.remember_matches(url_map)
    adapter = url_map.bind("localhost")
    assert adapter.match("/task/x/y/status") == ("status", {"task_id": "x/y"})

    url_map.add(Rule("/task/<path:task_id>/y/status", endpoint="nested"))

    assert url_map._matcher._remembered == {}  # type: ignore[attr-defined]
    assert url_map.bind("localhost").match("/task/x/y/status") == (
        "nested",
        {"task_id": "x"},
    )


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "MATCH_CACHE_SIZE", 3)
    app = _remembering_app()
    client = app.test_client()
    for n in range(7):
        assert client.get(f"/task/t{n}/status").text == f"t{n}"
        assert len(app.url_map._matcher._remembered) <= 3  # type: ignore[attr-defined]


def test_the_service_app_remembers_its_matches(app: Flask) -> None:
    assert isinstance(app.url_map._matcher, routes._RememberingMatcher)

"""The OpenSearch API specification and REST tests kept in ``../shared`` beside the
repository, and a jsonschema validator for the façade's responses."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# libyaml reads the 280 kB _core.yaml ten times faster than pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "opensearch-spec"
SPEC = SHARED / "spec"
REST_TESTS = SHARED / "opensearch-rest-api-spec" / "test"


def require_shared() -> Path:
    """Fail loudly (never skip) when ``../shared/opensearch-spec`` is missing."""
    if not (SPEC / "namespaces" / "tasks.yaml").is_file():
        raise RuntimeError(
            f"the OpenSearch spec is missing at {SPEC.resolve()}: the repository "
            "must sit beside shared/ (its tests read ../shared/opensearch-spec)"
        )
    return SHARED


def _retrieve(uri: str) -> Resource[Any]:
    path = Path(uri.removeprefix("file://"))
    # A safe loader: the C build of SafeLoader when PyYAML has libyaml.
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506
    return Resource.from_contents(document, default_specification=DRAFT202012)


@cache
def _registry() -> Registry[Any]:
    require_shared()
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def validator(namespace: str, response: str, media_type: str) -> Draft202012Validator:
    """The schema of ``components.responses[response]`` in ``namespaces/<ns>.yaml``
    (``$ref``s resolved across the spec's files)."""
    base = (SPEC / "namespaces" / f"{namespace}.yaml").resolve().as_uri()
    pointer = media_type.replace("~", "~0").replace("/", "~1")
    schema = {
        "$ref": f"{base}#/components/responses/{response}/content/{pointer}/schema"
    }
    return Draft202012Validator(schema, registry=_registry())


def assert_valid(
    document: Any, namespace: str, response: str, media_type: str = "application/json"
) -> None:
    errors = sorted(
        validator(namespace, response, media_type).iter_errors(document),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, "\n".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )

"""A small runner for OpenSearch's REST YAML tests (``rest-api-spec/test``), driving
opensearch-py the way OpenSearch's own runners do (``DoSection``,
``IsTrueAssertion``, ``MatchAssertion``…). It knows the features the _tasks tests
use: ``arbitrary_key`` and ``headers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

FEATURES = {"arbitrary_key", "headers"}
# DoSection's catch names.
CATCHES = {
    "missing": 404,
    "bad_request": 400,
    "conflict": 409,
    "request_timeout": 408,
    "unavailable": 503,
}


@dataclass(frozen=True)
class YamlTest:
    file: Path
    name: str
    steps: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return f"{self.file.parent.name}/{self.file.name}::{self.name}"


def load_tests(path: Path) -> list[YamlTest]:
    tests: list[YamlTest] = []
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if not document:
            continue
        for name, steps in document.items():
            if name in ("setup", "teardown"):
                raise NotImplementedError(f"{path}: {name} sections are not supported")
            tests.append(YamlTest(path, name, steps))
    return tests


class Skipped(Exception):
    """The test's skip section applies to this server."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip().split("."))


def _in_range(version: tuple[int, ...], spec: str) -> bool:
    low, _, high = spec.partition("-")
    if low.strip() and version < _version(low):
        return False
    return not (high.strip() and version > _version(high))


class Runner:
    """Runs one YAML test against a client; stash values live for that test."""

    def __init__(self, client: OpenSearch) -> None:
        self.client = client
        self.version = _version(client.info()["version"]["number"])
        self.stash: dict[str, Any] = {}
        self.response: Any = None

    def run(self, test: YamlTest) -> None:
        self.stash = {}
        for step in test.steps:
            ((kind, body),) = step.items()
            getattr(self, f"_{kind}")(body)

    def _skip(self, body: dict[str, Any]) -> None:
        features = body.get("features", [])
        features = [features] if isinstance(features, str) else features
        missing = set(features) - FEATURES
        if missing:
            raise Skipped(f"features {sorted(missing)}")
        version = body.get("version")
        if version and any(
            _in_range(self.version, part) for part in str(version).split(",")
        ):
            raise Skipped(body.get("reason", f"version {version}"))

    def _do(self, body: dict[str, Any]) -> None:
        body = dict(body)
        headers = body.pop("headers", None)
        catch = body.pop("catch", None)
        body.pop("warnings", None)
        ((api, params),) = body.items()
        namespace, _, method = api.rpartition(".")
        target: Any = getattr(self.client, namespace) if namespace else self.client
        arguments = {k: self._resolve(v) for k, v in (params or {}).items()}
        try:
            self.response = getattr(target, method)(headers=headers, **arguments)
        except TransportError as error:
            if catch is None:
                raise
            self._check_catch(catch, error)
            self.response = error.info
            return
        assert catch is None, f"expected an error ({catch}), got {self.response!r}"

    def _check_catch(self, catch: str, error: TransportError) -> None:
        status = error.status_code
        if catch in CATCHES:
            assert status == CATCHES[catch], f"{catch}: got {status}"
        elif catch == "request":
            assert isinstance(status, int)
            assert status >= 400
        elif catch.startswith("/") and catch.endswith("/"):
            assert re.search(catch[1:-1], str(error.info), re.X), error.info
        else:
            raise NotImplementedError(f"catch {catch}")

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self.stash[value[1:]]
        return value

    def _lookup(self, path: str) -> Any:
        if path == "$body":
            return self.response
        value = self.response
        for part in path.split("."):
            part = str(self._resolve(part))
            if part == "_arbitrary_key_":
                assert isinstance(value, dict), f"no object at {path}"
                assert value, f"no key at {path}"
                return next(iter(value))
            if isinstance(value, list):
                value = value[int(part)]
            else:
                assert isinstance(value, dict), f"{path}: {value!r} is no object"
                value = value.get(part)
        return value

    def _set(self, body: dict[str, str]) -> None:
        for path, name in body.items():
            self.stash[name] = self._lookup(path)

    @staticmethod
    def _truthy(value: Any) -> bool:
        # IsTrueAssertion: only null, "", "false" and "0" fail ({} and [] pass).
        return value is not None and str(value).lower() not in ("", "false", "0")

    def _is_true(self, path: str) -> None:
        value = self._lookup(path)
        assert self._truthy(value), f"is_true {path}: {value!r}"

    def _is_false(self, path: str) -> None:
        value = self._lookup(path)
        assert not self._truthy(value), f"is_false {path}: {value!r}"

    def _match(self, body: dict[str, Any]) -> None:
        for path, expected in body.items():
            actual = self._lookup(path)
            expected = self._resolve(expected)
            if isinstance(expected, str) and len(expected.strip()) > 1:
                pattern = expected.strip()
                if pattern.startswith("/") and pattern.endswith("/"):
                    assert re.search(pattern[1:-1], str(actual), re.X), (
                        f"match {path}: {actual!r} !~ {pattern}"
                    )
                    continue
            assert actual == expected, f"match {path}: {actual!r} != {expected!r}"

    def _compare(self, body: dict[str, Any], check: Any, name: str) -> None:
        for path, expected in body.items():
            actual = self._lookup(path)
            assert check(actual, self._resolve(expected)), f"{name} {path}: {actual!r}"

    def _gte(self, body: dict[str, Any]) -> None:
        self._compare(body, lambda a, b: a >= b, "gte")

    def _gt(self, body: dict[str, Any]) -> None:
        self._compare(body, lambda a, b: a > b, "gt")

    def _lte(self, body: dict[str, Any]) -> None:
        self._compare(body, lambda a, b: a <= b, "lte")

    def _lt(self, body: dict[str, Any]) -> None:
        self._compare(body, lambda a, b: a < b, "lt")

    def _length(self, body: dict[str, Any]) -> None:
        self._compare(body, lambda a, b: len(a) == b, "length")

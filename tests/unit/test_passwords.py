"""Passwords as Druid's PasswordHashGenerator makes them, the verification cache,
the permission model and submit's resource actions (spec security.md §1.6, §1.9, §2)."""

from __future__ import annotations

import re

import pytest

from overlord.errors import InvalidInput, InvalidPermission
from overlord.services import auth as auth_service
from overlord.services.auth import (
    Credentials,
    Grant,
    PasswordVerifier,
    Principal,
    ResourceAction,
    TtlCache,
)

SALT = bytes(range(32))


@pytest.mark.parametrize(
    ("password", "prefix"),
    [
        # Computed with Java 17's PBKDF2WithHmacSHA512 (spec §1.9).
        ("helloworld", "3d4724caeed2eaee2ab798aecbcbd932"),
        ("pässwörd:ü€", "83d0dfaaa59b0a5c889152bd04354f40"),
    ],
)
def test_hash_equals_javas_pbkdf2(password: str, prefix: str) -> None:
    digest = auth_service.hash_password(password, SALT, 10000)
    assert len(digest) == 64
    assert digest.hex()[:32] == prefix


def test_new_credentials_have_druids_sizes_and_recompute() -> None:
    credentials = auth_service.new_credentials("helloworld", 10000)
    assert len(credentials.salt) == 32
    assert len(credentials.hash) == 64
    assert credentials.iterations == 10000
    assert credentials.hash == auth_service.hash_password(
        "helloworld", credentials.salt, 10000
    )
    # A fresh salt every time.
    assert auth_service.new_credentials("helloworld", 10000).salt != credentials.salt


def test_empty_password_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^Cannot assign empty password\.$"):
        auth_service.new_credentials("", 10000)


def test_verifier_accepts_right_refuses_wrong_and_caches_the_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = auth_service.new_credentials("secret", 1000)
    verifier = PasswordVerifier(size=2)
    calls: list[str] = []
    real = auth_service.hash_password

    def counting(password: str, salt: bytes, iterations: int) -> bytes:
        calls.append(password)
        return real(password, salt, iterations)

    monkeypatch.setattr(auth_service, "hash_password", counting)
    assert verifier.verify("secret", credentials)
    assert verifier.verify("secret", credentials)
    assert not verifier.verify("wrong", credentials)
    assert not verifier.verify("wrong", credentials)
    assert calls == ["secret", "wrong"]
    # Bounded: a third password evicts the oldest.
    assert not verifier.verify("third", credentials)
    assert verifier.verify("secret", credentials)
    assert calls == ["secret", "wrong", "third", "secret"]


def test_verifier_never_keeps_the_plaintext() -> None:
    credentials = auth_service.new_credentials("plain-text-secret", 1000)
    verifier = PasswordVerifier()
    verifier.verify("plain-text-secret", credentials)
    keys = list(verifier._keys)  # the cache's own keys
    assert all(b"plain-text-secret" not in key[0] for key in keys)


def test_ttl_cache_reloads_after_expiry() -> None:
    loads: list[int] = []
    cache: TtlCache[str, int] = TtlCache(3600)
    assert cache.get("a", lambda: loads.append(1) or 1) == 1
    assert cache.get("a", lambda: loads.append(2) or 2) == 1
    uncached: TtlCache[str, int] = TtlCache(0)
    assert uncached.get("a", lambda: 1) == 1
    assert uncached.get("a", lambda: 2) == 2
    assert loads == [1]
    assert cache.peek("a") == 1
    assert cache.peek("b") is None
    cache.put("b", 5)
    assert cache.peek("b") == 5
    uncached.put("b", 5)
    assert uncached.peek("b") is None


def _principal(*grants: tuple[str, str, str]) -> Principal:
    return Principal(
        "u",
        Credentials(b"", b"", 1),
        tuple(Grant(t, re.compile(n), a) for t, n, a in grants),
    )


def test_permissions_match_the_whole_name_and_read_is_not_write() -> None:
    principal = _principal(
        ("DATASOURCE", "wiki.*", "READ"), ("STATE", "STATE", "WRITE")
    )
    assert principal.allows("DATASOURCE", "wikipedia", "READ")
    assert not principal.allows("DATASOURCE", "wikipedia", "WRITE")
    assert not principal.allows("DATASOURCE", "awiki", "READ")
    assert not principal.allows("datasource", "wiki", "READ")
    assert principal.allows("STATE", "STATE", "WRITE")
    assert not principal.allows("STATE", "STATE", "READ")
    assert not _principal(("DATASOURCE", "wiki", "READ")).allows(
        "DATASOURCE", "wikipedia", "READ"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            [{"resource": {"name": "(", "type": "DATASOURCE"}, "action": "READ"}],
            "Invalid permission, resource name regex[(] does not compile.",
        ),
        (
            [{"resource": {"name": r"\p{L}", "type": "DATASOURCE"}, "action": "READ"}],
            r"Invalid permission, resource name regex[\p{L}] does not compile.",
        ),
        (
            [{"resource": {"name": "a", "type": "DATASOURCE"}, "action": "DELETE"}],
            "Invalid permission, action[DELETE] must be one of [READ, WRITE].",
        ),
    ],
)
def test_invalid_permissions_are_refused(document: object, message: str) -> None:
    with pytest.raises(InvalidPermission) as caught:
        auth_service.parse_permissions(document)
    assert caught.value.message == message


def test_permission_action_is_read_in_any_case() -> None:
    document = [{"resource": {"name": "a.*", "type": "DATASOURCE"}, "action": "read"}]
    assert auth_service.parse_permissions(document) == [
        auth_service.PermissionRow("DATASOURCE", "a.*", "READ")
    ]


COMBINING = {
    "type": "index_parallel",
    "spec": {
        "ioConfig": {
            "inputSource": {
                "type": "combining",
                "delegates": [
                    {"type": "inline"},
                    {"type": "local"},
                    {"type": "combining", "delegates": [{"type": "inline"}]},
                ],
            }
        }
    },
}


@pytest.mark.parametrize(
    ("type_name", "document", "security", "expected"),
    [
        ("noop", {}, True, [ResourceAction("DATASOURCE", "ds", "WRITE")]),
        (
            "index_parallel",
            COMBINING,
            False,
            [ResourceAction("DATASOURCE", "ds", "WRITE")],
        ),
        (
            "index_parallel",
            COMBINING,
            True,
            [
                ResourceAction("DATASOURCE", "ds", "WRITE"),
                ResourceAction("EXTERNAL", "inline", "READ"),
                ResourceAction("EXTERNAL", "local", "READ"),
            ],
        ),
    ],
)
def test_submit_resource_actions(
    type_name: str,
    document: dict[str, object],
    security: bool,
    expected: list[ResourceAction],
) -> None:
    assert (
        auth_service.submit_resource_actions(
            type_name, document, "ds", input_source_security=security
        )
        == expected
    )


def test_type_without_input_source_support_is_400_under_input_security() -> None:
    with pytest.raises(InvalidInput) as caught:
        auth_service.submit_resource_actions(
            "index_hadoop", {}, "ds", input_source_security=True
        )
    assert caught.value.message == (
        "Task type [index_hadoop], does not support input source based security"
    )

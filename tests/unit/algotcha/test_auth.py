from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest

from algotcha import auth
from algotcha.config import Settings
from algotcha.errors import UnauthorizedError, UnavailableError

SETTINGS = Settings(jwt_secret="k" * 48)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], key: bytes | None) -> str:
    """Build a token by hand, as an attacker would."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = (
        b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "7",
        "iat": now,
        "exp": now + 60,
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_issued_token_verifies_to_its_user() -> None:
    assert auth.verify_token(SETTINGS, auth.issue_token(SETTINGS, 7)) == 7


def test_hand_signed_token_with_the_right_key_verifies() -> None:
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), SETTINGS.jwt_secret.encode())  # type: ignore[union-attr]
    assert auth.verify_token(SETTINGS, token) == 7


@pytest.mark.parametrize(
    ("header", "body", "key"),
    [
        ({"alg": "none", "typ": "JWT"}, claims(), None),
        ({"alg": "HS256"}, claims(), b"another key that is long enough to pass" * 2),
        ({"alg": "HS512"}, claims(), b"k" * 48),
        ({"alg": "HS256"}, claims(exp=int(time.time()) - 3600), b"k" * 48),
        ({"alg": "HS256"}, claims(exp=None), b"k" * 48),
        ({"alg": "HS256"}, claims(iat=None), b"k" * 48),
        ({"alg": "HS256"}, claims(sub=None), b"k" * 48),
        ({"alg": "HS256"}, claims(aud="someone-else"), b"k" * 48),
        ({"alg": "HS256"}, claims(iss="someone-else"), b"k" * 48),
        ({"alg": "HS256"}, claims(sub="admin"), b"k" * 48),
        ({"alg": "HS256"}, claims(sub="²"), b"k" * 48),
    ],
    ids=[
        "alg-none",
        "other-key",
        "other-alg",
        "expired",
        "no-exp",
        "no-iat",
        "no-sub",
        "wrong-aud",
        "wrong-iss",
        "non-numeric-sub",
        "unicode-digit-sub",
    ],
)
def test_verify_token_refuses(
    header: dict[str, object], body: dict[str, object], key: bytes | None
) -> None:
    with pytest.raises(UnauthorizedError):
        auth.verify_token(SETTINGS, forge(header, body, key))


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "...", "x" * 5000])
def test_verify_token_refuses_garbage(garbage: str) -> None:
    with pytest.raises(UnauthorizedError):
        auth.verify_token(SETTINGS, garbage)


def test_passwords_hash_with_argon2id_and_verify() -> None:
    hashed = auth.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert auth.verify_password(hashed, "correct horse")
    assert not auth.verify_password(hashed, "wrong horse")
    assert not auth.verify_password(None, "anything")


@pytest.mark.parametrize(("budget_mib", "size"), [(64, 1), (100, 1), (256, 4), (1024, 16)])
def test_hash_slots_fit_the_memory_budget(budget_mib: int, size: int) -> None:
    assert auth.HashSlots(budget_mib, wait_s=0.1).size == size


def test_a_hash_that_finds_no_slot_waits_then_is_503_with_retry_after() -> None:
    slots = auth.HashSlots(64, wait_s=0.05)
    with slots.slot():
        with pytest.raises(UnavailableError) as exc:
            with slots.slot():
                pass  # pragma: no cover - never entered
        assert exc.value.status == 503
        assert exc.value.headers["Retry-After"] == "1"
    with slots.slot():  # released by the first holder, whatever happened in between
        pass


def test_hash_slots_never_run_more_hashes_than_their_size() -> None:
    slots = auth.HashSlots(128, wait_s=5)
    running, most = 0, 0
    lock = threading.Lock()

    def hash_once() -> None:
        nonlocal running, most
        with slots.slot():
            with lock:
                running += 1
                most = max(most, running)
            auth.hash_password("a password")
            with lock:
                running -= 1

    threads = [threading.Thread(target=hash_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2

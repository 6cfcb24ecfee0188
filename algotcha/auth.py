"""Password hashing (Argon2id) and JWT bearer tokens (joserfc, HS256 pinned)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import HTTPConnection

from algotcha import state
from algotcha.config import PASSWORD_HASH_MIB, Settings
from algotcha.errors import UnauthorizedError, UnavailableError

# The only algorithm accepted: a token that names another ("none", RS256 with our
# secret as a public key) is refused before its signature is looked at.
ALGORITHM = "HS256"

# argon2-cffi's defaults, with the memory cost that HashSlots budgets for stated here.
_hasher = PasswordHasher(memory_cost=PASSWORD_HASH_MIB * 1024)
# Verified against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


class HashSlots:
    """Bounds the Argon2id hashes running at once, so their memory stays within a budget.

    Login and register run in a thread pool of 40; unbounded, 40 hashes of 64 MiB each would
    exceed the API's memory limit. A caller that finds no slot free within the wait gets a 503.
    """

    def __init__(self, memory_budget_mib: int, wait_s: float) -> None:
        self.size = max(1, memory_budget_mib // PASSWORD_HASH_MIB)
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(self.size)

    @classmethod
    def for_settings(cls, settings: Settings) -> HashSlots:
        return cls(settings.login_hash_memory_mib, settings.login_hash_wait_s)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if not self._free.acquire(timeout=self.wait_s):
            raise UnavailableError(
                "too many sign-ins at once; try again in a moment", retry_after_s=1
            )
        try:
            yield
        finally:
            self._free.release()


def issue_token(settings: Settings, user_id: int, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + settings.jwt_ttl_s,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    key = OctKey.import_key(settings.require_jwt_secret())
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM])


def verify_token(settings: Settings, token: str) -> int:
    """The user id of a valid token; UnauthorizedError for anything else."""
    key = OctKey.import_key(settings.require_jwt_secret())
    # joserfc checks exp only when it is present: make every claim essential.
    registry = jwt.JWTClaimsRegistry(
        leeway=30,
        sub={"essential": True},
        iat={"essential": True},
        exp={"essential": True},
        iss={"essential": True, "value": settings.jwt_issuer},
        aud={"essential": True, "value": settings.jwt_audience},
    )
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        registry.validate(decoded.claims)
        subject = decoded.claims["sub"]
    except (JoseError, ValueError, TypeError, KeyError):
        raise UnauthorizedError("the token is invalid or has expired; log in again") from None
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
        raise UnauthorizedError("the token names no user")
    return int(subject)


def current_user(request: HTTPConnection) -> int:
    """The id of the user whose bearer token came with the request."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError()
    return verify_token(state.of(request).settings, token.strip())

"""Password hashing (Argon2id) and JWT bearer tokens (joserfc, HS256 pinned)."""

from __future__ import annotations

import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import HTTPConnection

from algotcha.config import Settings
from algotcha.errors import UnauthorizedError

# The only algorithm accepted: a token that names another ("none", RS256 with our
# secret as a public key) is refused before its signature is looked at.
ALGORITHM = "HS256"

_hasher = PasswordHasher()
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
    if not isinstance(subject, str) or not subject.isdigit():
        raise UnauthorizedError("the token names no user")
    return int(subject)


def current_user(request: HTTPConnection) -> int:
    """The id of the user whose bearer token came with the request."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError()
    return verify_token(request.app.state.settings, token.strip())

"""Accounts: registration, login, and the profile."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import ConnectionPool

from algotcha import auth
from algotcha.config import Settings
from algotcha.db import login_failures as failure_db
from algotcha.db import users as user_db
from algotcha.db.pool import transaction
from algotcha.db.users import UserRow
from algotcha.errors import (
    EmailTakenError,
    LoginLimitError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from algotcha.vocabulary import NotifyChannel

logger = logging.getLogger(__name__)


def register(
    pool: ConnectionPool, slots: auth.HashSlots, *, email: str, password: str, name: str
) -> UserRow:
    with slots.slot():
        password_hash = auth.hash_password(password)
    try:
        with transaction(pool) as conn:
            user = user_db.insert_user(conn, email=email, name=name, password_hash=password_hash)
    except psycopg.errors.UniqueViolation:
        raise EmailTakenError("an account with this email already exists") from None
    logger.info("event=user_registered user=%s", user.id)
    return user


def login(
    pool: ConnectionPool,
    settings: Settings,
    slots: auth.HashSlots,
    *,
    email: str,
    password: str,
    address: str,
) -> str:
    """A bearer token for valid credentials; one vague error for every bad case.

    The attempt is recorded as a failure before the password is checked and forgotten once it
    succeeds: two processes racing on one account then both see each other's attempt, so no
    burst gets past the limit.
    """
    account = email.strip().lower()
    attempt = _start_attempt(pool, settings, account, address)
    try:
        with transaction(pool) as conn:
            user = user_db.select_user_by_email(conn, email)
        with slots.slot():
            valid = auth.verify_password(user.password_hash if user else None, password)
    except UnavailableError:
        # Busy, not wrong: a 503 must not count towards the caller's lockout.
        with transaction(pool) as conn:
            failure_db.delete_login_failure(conn, attempt)
        raise
    if not valid or user is None:
        logger.info("event=login_failed user=%s", user.id if user else "unknown")
        raise UnauthorizedError("wrong email or password")
    with transaction(pool) as conn:
        failure_db.delete_login_failures_for_email(conn, account)
    if auth.needs_rehash(user.password_hash):
        with slots.slot():
            new_hash = auth.hash_password(password)
        with transaction(pool) as conn:
            user_db.update_user_password_hash(conn, user.id, new_hash)
    return auth.issue_token(settings, user.id)


def _start_attempt(pool: ConnectionPool, settings: Settings, account: str, address: str) -> int:
    """Record the attempt, then refuse it (429) if it is one too many for account or address."""
    window_s = settings.login_failure_window_s
    # Two transactions: the count must see every attempt committed before it, ours included.
    with transaction(pool) as conn:
        attempt = failure_db.insert_login_failure(
            conn, email=account, address=address, window_s=window_s
        )
    with transaction(pool) as conn:
        counts = failure_db.select_failure_counts(
            conn, email=account, address=address, window_s=window_s
        )
        over_account = counts.account_failures > settings.login_failures_per_account
        over_address = counts.address_failures > settings.login_failures_per_address
        if over_account or over_address:
            # A refused attempt is not a guess: it must not push the lockout further out.
            failure_db.delete_login_failure(conn, attempt)
    if not (over_account or over_address):
        return attempt
    retry_after_s = max(
        counts.account_clears_in_s if over_account else 0,
        counts.address_clears_in_s if over_address else 0,
        1,
    )
    logger.info(
        "event=login_limited by=%s retry_after_s=%s",
        "account" if over_account else "address",
        retry_after_s,
    )
    raise LoginLimitError(
        f"too many failed logins for this {'account' if over_account else 'address'}; "
        f"try again in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )


def get(pool: ConnectionPool, user_id: int) -> UserRow:
    with transaction(pool) as conn:
        user = user_db.select_user(conn, user_id)
    if user is None:
        # The token outlived its account.
        raise UnauthorizedError("this account no longer exists")
    return user


def update_profile(
    pool: ConnectionPool, user_id: int, *, name: str | None, notify_via: NotifyChannel | None
) -> UserRow:
    with transaction(pool) as conn:
        user = user_db.update_user_profile(conn, user_id, name=name, notify_via=notify_via)
    if user is None:
        raise NotFoundError("this account no longer exists")
    return user

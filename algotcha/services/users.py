"""Accounts: registration, login, and the profile."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import ConnectionPool

from algotcha import auth
from algotcha.config import Settings
from algotcha.db import users as user_db
from algotcha.db.pool import transaction
from algotcha.db.users import UserRow
from algotcha.errors import EmailTakenError, NotFoundError, UnauthorizedError

logger = logging.getLogger(__name__)


def register(pool: ConnectionPool, *, email: str, password: str, name: str) -> UserRow:
    password_hash = auth.hash_password(password)
    try:
        with transaction(pool) as conn:
            user = user_db.insert_user(conn, email=email, name=name, password_hash=password_hash)
    except psycopg.errors.UniqueViolation:
        raise EmailTakenError("an account with this email already exists") from None
    logger.info("event=user_registered user=%s", user.id)
    return user


def login(pool: ConnectionPool, settings: Settings, *, email: str, password: str) -> str:
    """A bearer token for valid credentials; one vague error for every bad case."""
    with transaction(pool) as conn:
        user = user_db.select_user_by_email(conn, email)
    if not auth.verify_password(user.password_hash if user else None, password) or user is None:
        raise UnauthorizedError("wrong email or password")
    if auth.needs_rehash(user.password_hash):
        with transaction(pool) as conn:
            user_db.update_user_password_hash(conn, user.id, auth.hash_password(password))
    return auth.issue_token(settings, user.id)


def get(pool: ConnectionPool, user_id: int) -> UserRow:
    with transaction(pool) as conn:
        user = user_db.select_user(conn, user_id)
    if user is None:
        # The token outlived its account.
        raise UnauthorizedError("this account no longer exists")
    return user


def update_profile(
    pool: ConnectionPool, user_id: int, *, name: str | None, notify_via: str | None
) -> UserRow:
    with transaction(pool) as conn:
        user = user_db.update_user_profile(conn, user_id, name=name, notify_via=notify_via)
    if user is None:
        raise NotFoundError("this account no longer exists")
    return user

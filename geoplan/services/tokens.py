"""Bearer tokens for the staff and planner roles: created by `geoplan token create`, stored hashed, revocable.

Tokens are 256-bit random strings, so a plain SHA-256 of the token is a safe lookup key (no slow hash needed:
there is nothing to brute-force). The registry lives in the same database as the layers: a table in the
GeoPackage file or in PostGIS, reached through SQLAlchemy in both cases.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from geoplan.access import Role
from geoplan.errors import InputError, NotFoundError
from geoplan.storage.base import now_utc

TOKEN_PREFIX = "gp_"
_metadata = MetaData()
_tokens = Table(
    "geoplan_tokens",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
)


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: Role
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)

    def create(self, *, name: str, role: Role) -> str:
        """Make a token and return it in clear; only its hash is kept, so it cannot be shown again."""
        if role is Role.PUBLIC:
            raise InputError("public access needs no token; choose staff, planner or admin")
        name = name.strip()
        if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
            raise InputError("a token name must be 1–100 printable characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "role": role.label, "token_hash": _hash(token), "created_at": now_utc()}
        try:
            with self.engine.begin() as connection:
                connection.execute(_tokens.insert(), row)
        except IntegrityError:
            raise InputError(f"a token named {name!r} exists already") from None
        return token

    def verify(self, token: str) -> TokenInfo | None:
        """The active token's identity, or None for unknown and revoked tokens."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        query = select(_tokens).where(_tokens.c.token_hash == _hash(token), _tokens.c.revoked_at.is_(None))
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _info(row)

    def list(self) -> list[TokenInfo]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(_tokens).order_by(_tokens.c.id)).mappings().all()
        return [_info(row) for row in rows]

    def revoke(self, name: str) -> None:
        with self.engine.begin() as connection:
            result = connection.execute(
                update(_tokens)
                .where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_utc())
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no active token named {name!r}")

    def close(self) -> None:
        self.engine.dispose()


def _info(row: object) -> TokenInfo:
    mapping = dict(row)  # type: ignore[call-overload]
    return TokenInfo(mapping["name"], Role.parse(mapping["role"]), mapping["created_at"], mapping["revoked_at"])

"""Bearer tokens for the staff and planner roles: created by `geoplan token create`, stored hashed, revocable.

Tokens are 256-bit random strings, so a plain SHA-256 of the token is a safe lookup key (no slow hash needed:
there is nothing to brute-force). The registry lives in the same database as the layers: a table in the
GeoPackage file or in PostGIS, reached through SQLAlchemy in both cases.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from geoplan.access import Role
from geoplan.errors import InputError, NotFoundError
from geoplan.storage.audit_actions import TOKENS_LAYER
from geoplan.storage.audit_log import ensure_audit_table, write_entry
from geoplan.storage.base import now_utc

TOKEN_PREFIX = "gp_"
SYSTEM_ACTOR = "system"
"""Who made or revoked a token when the caller names no one (set-up scripts, tests)."""
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
        ensure_audit_table(engine)

    def create(self, *, name: str, role: Role, actor: str = SYSTEM_ACTOR) -> str:
        """Make a token and return it in clear; only its hash is kept, so it cannot be shown again.

        The audit entry (same transaction) names the token's id, name and role and who made it; never the
        token or its hash."""
        if role is Role.PUBLIC:
            raise InputError("public access needs no token; choose staff, planner or admin")
        name = name.strip()
        if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
            raise InputError("a token name must be 1–100 printable characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "role": role.label, "token_hash": _hash(token), "created_at": now_utc()}
        try:
            with self.engine.begin() as connection:
                inserted = connection.execute(_tokens.insert(), row).inserted_primary_key
                assert inserted is not None
                _audit(connection, "token:create", actor, int(inserted[0]), name, role.label, at=row["created_at"])
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

    def revoke(self, name: str, *, actor: str = SYSTEM_ACTOR) -> None:
        """Revoke an active token, with its audit entry (same transaction)."""
        at = now_utc()
        with self.engine.begin() as connection:
            found = connection.execute(
                select(_tokens.c.id, _tokens.c.role).where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None))
            ).first()
            if found is None:
                raise NotFoundError(f"no active token named {name!r}")
            connection.execute(update(_tokens).where(_tokens.c.id == found.id).values(revoked_at=at))
            _audit(connection, "token:revoke", actor, int(found.id), name, str(found.role), at=at)

    def close(self) -> None:
        self.engine.dispose()


def _audit(connection: Connection, action: str, actor: str, token_id: int, name: str, role: str, *, at: str) -> None:
    detail = {"mode": action.split(":")[1], "ids": [str(token_id)], "token_id": token_id, "name": name, "role": role}
    write_entry(connection, actor=actor, layer=TOKENS_LAYER, action=action, count=1, detail=detail, at=at)


def _info(row: object) -> TokenInfo:
    mapping = dict(row)  # type: ignore[call-overload]
    return TokenInfo(mapping["name"], Role.parse(mapping["role"]), mapping["created_at"], mapping["revoked_at"])

"""`geoplan token create | list | revoke`: bearer tokens for the staff, planner and admin roles."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from geoplan.beijing_time import shown_time
from geoplan.commands.common import (
    StoreOption,
    err,
    open_configured,
    out,
)
from geoplan.errors import InputError


def _registry(store: str | None):  # type: ignore[no-untyped-def]
    from geoplan.services.tokens import TokenRegistry
    from geoplan.storage.side_tables import side_table_engine

    settings, backend = open_configured(store)
    try:
        if not backend.is_initialised():
            raise InputError(f"the store {settings.store} is not initialised; run `geoplan db init` first")
    finally:
        backend.close()
    return TokenRegistry(side_table_engine(settings.store))


def _actor() -> str:
    """Who runs the command, as the audit log names a command-line user."""
    return f"cli:{os.environ.get('USER', 'unknown')}"


def token_create(
    role: Annotated[str, typer.Option(help="staff, planner or admin.")],
    name: Annotated[str, typer.Option(help="Who or what the token is for (unique).")],
    store: StoreOption = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from geoplan.access import Role

    registry = _registry(store)
    try:
        token = registry.create(name=name, role=Role.parse(role), actor=_actor())
    finally:
        registry.close()
    err.print(f"token for {name!r} ({role}); keep it, it is not shown again:")
    out.print(token, markup=False, highlight=False)


def token_list(store: StoreOption = None) -> None:
    """List tokens (names, roles, dates; never the tokens themselves)."""
    registry = _registry(store)
    try:
        infos = registry.list()
    finally:
        registry.close()
    table = Table(title="tokens")
    for column in ("name", "role", "created (北京时间)", "revoked (北京时间)"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, info.role.label, shown_time(info.created_at), shown_time(info.revoked_at))
    out.print(table)


def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    store: StoreOption = None,
) -> None:
    """Revoke a token; it stops working at once."""
    registry = _registry(store)
    try:
        registry.revoke(name, actor=_actor())
    finally:
        registry.close()
    out.print(f"token {name!r} revoked")


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="Bearer tokens for the staff, planner and admin roles.", no_args_is_help=True)
    app.add_typer(token_app, name="token")
    token_app.command("create")(token_create)
    token_app.command("list")(token_list)
    token_app.command("revoke")(token_revoke)

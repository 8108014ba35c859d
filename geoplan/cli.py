"""The `geoplan` command: the Typer root. Every command takes --store (a .gpkg path or a postgresql:// URL).

Each command group lives in its own module under geoplan/commands/ and registers itself here.
Exit status: 0 on success, 2 on bad input (one-line reason on stderr), 1 on an internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from geoplan import __version__
from geoplan.commands import (
    checklist,
    compliance,
    coverage,
    evaluate,
    ledger,
    lifecircle,
    monitoring,
    overlaps,
    report,
    scenario,
    serve,
    store,
    tokens,
)
from geoplan.commands.common import err, out, print_problems
from geoplan.errors import READ_ONLY_MESSAGE, GeoplanError, InputError, is_read_only_refusal

log = logging.getLogger("geoplan")

app = typer.Typer(
    name="geoplan",
    help="GIS planning and monitoring for Gaoming District: layers, 多规合一 overlaps, coverage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version() -> None:
    """Print the geoplan version."""
    out.print(__version__)


# The order of registration is the order of `geoplan --help` (commands first, then the groups db, token, ledger).
monitoring.register(app)  # indicators, snapshot, history, warnings
report.register(app)  # the quarterly report
evaluate.register(app)  # the plan-end evaluation
app.command("version")(version)
store.register(app)  # demo, layers, import, export; db init
serve.register(app)
tokens.register(app)  # token create, list, revoke
compliance.register(app)  # check-site
overlaps.register(app)  # overlaps, mark
coverage.register(app)  # coverage, suggest-sites
lifecircle.register(app)  # life circles of every public service
ledger.register(app)  # ledger show, record, history
checklist.register(app)  # checklist items, show, record (the village checklist)
scenario.register(app)  # scenario create, add, list, diff, adopt, discard


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps typed errors to exit codes and one-line messages (no traceback for the user)."""
    try:
        # Standalone mode lets typer/click report usage errors (exit 2) and Ctrl-C (exit 1) themselves, whichever
        # copy of click this typer version uses; only our own exceptions come through to the handlers below.
        app(args=argv, standalone_mode=True, prog_name="geoplan")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        if hasattr(exc, "problems"):
            print_problems("problems", exc.problems)
        return 2
    except (GeoplanError, Exception) as exc:
        if os.environ.get("GEOPLAN_DEBUG"):
            raise
        if is_read_only_refusal(exc):
            err.print(f"error: {READ_ONLY_MESSAGE}", markup=False, highlight=False)
            return 1
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        return 1
    return 0


def run() -> None:
    sys.exit(main())

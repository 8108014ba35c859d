"""Reading a YAML file a user names (conflict rules, coverage rules, indicator definitions).

The size is capped before anything is read, and every way the file can be unusable (missing, too large, not
UTF-8, not YAML) is the user's mistake: `InputError`, exit 2 on the command line, 400 over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from geoplan.errors import InputError


def read_user_yaml(path: Path, *, what: str, max_bytes: int) -> tuple[Any, bytes]:
    """The parsed document and the file's bytes (for a digest). `what` names the file in errors: "rules file"."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(f"{what} {path} not found") from None
    if size > max_bytes:
        article = "an" if what[:1] in "aeiou" else "a"
        raise InputError(f"{path.name}: {article} {what} may hold at most {max_bytes} bytes, not {size}")
    data = path.read_bytes()
    try:
        return yaml.safe_load(data.decode("utf-8")), data
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise InputError(f"{path.name}: not a readable YAML file: {first}") from None

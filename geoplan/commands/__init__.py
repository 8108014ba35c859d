"""Sub-commands of `geoplan`, one module per group (registered in geoplan/cli.py with `add_typer`)."""

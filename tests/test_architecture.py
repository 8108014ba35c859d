"""The house rules, checked: the import contracts hold and catch a violation, modules stay small, tests mirror
the code, and the README stays one page."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_MODULE_LINES = 600
MAX_CLI_LINES = 200
MAX_README_LINES = 200
# One deliberate violation per contract of pyproject.toml's [tool.importlinter]: (file, import added, message).
VIOLATIONS = [
    (
        "geoplan/analysis/network.py",
        "from geoplan.storage.base import LayerStore",
        "geoplan.analysis is not allowed to import geoplan.storage",
    ),
    (
        "geoplan/storage/gpkg_blob.py",
        "import geoplan.services.tokens",
        "geoplan.storage is not allowed to import geoplan.services",
    ),
    ("geoplan/monitoring/ledger_quarters.py", "import web.settings", "geoplan.monitoring is not allowed to import web"),
    ("geoplan/reporting/svg.py", "import web.etags", "geoplan.reporting is not allowed to import web"),
    ("geoplan/crs.py", "import geoplan.io", "geoplan.crs is not allowed to import geoplan.io"),
]


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        pytest.fail("lint-imports is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [str(command), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 kept, 0 broken" in run.stdout


def test_a_violation_of_each_contract_is_caught(tmp_path: Path) -> None:
    for folder in ("geoplan", "web"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "vendor"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for relative, line, _ in VIOLATIONS:
        path = tmp_path / relative
        path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # deliberate violation\n", encoding="utf-8")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    for _, _, message in VIOLATIONS:
        assert message in run.stdout, message
    assert "0 kept, 5 broken" in run.stdout


def test_modules_are_small_and_the_cli_is_thin() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for folder in ("geoplan", "web")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert sizes["geoplan/cli.py"] < MAX_CLI_LINES


def test_tests_mirror_the_packages() -> None:
    packages = {path.parent.name for path in (ROOT / "geoplan").glob("*/__init__.py")}
    mirrored = {"commands": "cli"}  # the command modules are tested through the `geoplan` command
    missing = [name for name in sorted(packages) if not (ROOT / "tests" / mirrored.get(name, name)).is_dir()]
    assert missing == []


def test_the_readme_is_one_page_and_links_into_the_manual() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < MAX_README_LINES
    for page in ("docs/commands.md", "docs/architecture.md"):
        assert page in readme
        assert (ROOT / page).is_file()

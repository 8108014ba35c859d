"""The synthetic label follows the data: after a real list replaces the demo's cultural facilities, no page, API
or command marks them synthetic any more, and the banners name only the layers that still are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geoplan.catalog import Catalog
from geoplan.cli import main
from tests.io.test_column_map import _sheet_rows, write_map, write_workbook
from tests.web.conftest import Tokens, bearer

FACILITIES = "culture_facilities"


def replace_facilities(store: Path, tmp_path: Path) -> None:
    """What a staff member does with the bureau's list: import it over the demo's facilities."""
    sheet = tmp_path / "文化设施名录.xlsx"
    write_workbook(sheet, _sheet_rows())
    columns = write_map(tmp_path / "map.yaml")
    args = ["import", FACILITIES, str(sheet), "--crs", "gcj02", "--columns", str(columns), "--store", str(store)]
    assert main(args) == 0


def _layer_row_tag(html: str, name: str) -> str:
    row = re.search(rf'<tr data-layer="{name}">(.*?)</tr>', html, re.S)
    assert row is not None, name
    tag = re.search(r'<span class="gp-tag (gp-tag-\w+)">', row.group(1))
    assert tag is not None
    return tag.group(1)


def _titles(client: TestClient) -> dict[str, str]:
    return {c["id"]: c["title"] for c in client.get("/ogc/collections").json()["collections"]}


def test_replacing_the_demo_facilities_removes_their_label_everywhere(
    demo_client: TestClient,
    demo_copy: tuple[Path, Tokens],
    catalog: Catalog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, tokens = demo_copy
    staff, planner = bearer(tokens.staff), bearer(tokens.planner)
    assert catalog.get(FACILITIES).synthetic and catalog.get("villages").synthetic

    # Before: the demo's facilities are synthetic on every surface.
    layers = demo_client.get("/layers").text
    assert _layer_row_tag(layers, FACILITIES) == "gp-tag-synthetic"
    assert _layer_row_tag(layers, "villages") == "gp-tag-synthetic"
    assert _titles(demo_client)[FACILITIES].endswith("(synthetic)")
    coverage = demo_client.get("/api/coverage", headers=staff).json()
    assert "文化设施" in coverage["synthetic_layers"] and "文化设施" in coverage["synthetic_note"]

    replace_facilities(store, tmp_path)

    # After: the layer list, the layer's own page and its OGC collection call it real ...
    layers = demo_client.get("/layers").text
    assert _layer_row_tag(layers, FACILITIES) == "gp-tag-real"
    assert _layer_row_tag(layers, "villages") == "gp-tag-synthetic"  # the others still are
    page = demo_client.get(f"/layers/{FACILITIES}").text
    assert "示意数据 / synthetic" not in page and "真实数据" in page
    assert "SYNTHETIC cultural facilities" not in page  # the catalogue's description of the demo's data
    titles = _titles(demo_client)
    assert not titles[FACILITIES].endswith("(synthetic)") and titles["villages"].endswith("(synthetic)")
    one = demo_client.get(f"/ogc/collections/{FACILITIES}").json()
    assert "(synthetic)" not in one["title"] and one["numberMatched"] == len(_sheet_rows())
    assert "示意数据" not in demo_client.get(f"/ogc/collections/{FACILITIES}/items?f=html").text
    # ... the coverage banner names only the inputs that still are synthetic, by their Chinese titles ...
    coverage = demo_client.get("/api/coverage", headers=staff).json()
    still = [catalog.get(n).title_zh for n in ("villages", "roads", "population")]
    assert coverage["synthetic"] is True and coverage["synthetic_layers"] == still
    assert coverage["synthetic_note"] == f"示意数据 / synthetic：{'、'.join(still)}为合成的演示数据，覆盖率非官方统计。"
    # ... the planner's (the plan layers, none of which was replaced) is unchanged ...
    config = demo_client.get("/api/overlaps/config", headers=planner).json()
    assert config["syntheticNote"].startswith("示意数据 / synthetic：") and "文化设施" not in config["syntheticNote"]
    # ... and `geoplan layers` says which were replaced.
    capsys.readouterr()
    assert main(["layers", "--store", str(store)]) == 0
    table = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 3}
    assert "no (replaced)" in rows[FACILITIES] and rows["villages"].rstrip(" │").endswith("yes")

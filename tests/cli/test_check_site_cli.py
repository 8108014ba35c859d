"""`geoplan check-site` end to end on the demo store: verdicts, report files, exit codes, an untouched store.

Exit 0 means "the check ran" whatever the verdict; 2 means the input was refused, with a one-line reason and
no report file written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoplan.cli import main
from geoplan.crs import METRIC_CRS, wgs84_to_gcj02


@pytest.fixture(scope="module")
def on_red_line(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site file: the demo project that overlaps the red lines most (found with our own overlay)."""
    projects = gpd.read_file(demo_store_path, layer="projects")
    redlines = shapely.union_all(
        gpd.read_file(demo_store_path, layer="eco_redlines").to_crs(METRIC_CRS).geometry.to_numpy()
    )
    overlap = shapely.area(shapely.intersection(projects.to_crs(METRIC_CRS).geometry.to_numpy(), redlines))
    path = tmp_path_factory.mktemp("sites") / "on_red_line.geojson"
    projects.iloc[[int(np.argmax(overlap))]][["name", "geometry"]].to_file(path, driver="GeoJSON")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_failing_site_exits_0_and_prints_the_verdict_and_hits(
    demo_store_path: Path, on_red_line: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = _digest(demo_store_path)
    assert main(["check-site", str(on_red_line), "--store", str(demo_store_path)]) == 0
    printed = capsys.readouterr().out
    assert "FAIL" in printed and "ECO_PROJECT" in printed and "eco_redlines" in printed
    assert "checked without a hit" in printed and "SYNTHETIC" in printed
    assert _digest(demo_store_path) == digest


def test_reports_are_written_by_suffix(demo_store_path: Path, on_red_line: Path, tmp_path: Path) -> None:
    digest = _digest(demo_store_path)
    as_json, as_html = tmp_path / "report.json", tmp_path / "report.html"
    assert main(["check-site", str(on_red_line), "--store", str(demo_store_path), "-o", str(as_json)]) == 0
    assert main(["check-site", str(on_red_line), "--store", str(demo_store_path), "--output", str(as_html)]) == 0
    report = json.loads(as_json.read_text(encoding="utf-8"))
    assert report["pass"] is False and report["verdict"] == "fail"
    assert "ECO_PROJECT" in {h["rule"] for h in report["hits"]}
    assert {"site_area_m2", "site_area_ellipsoid_m2", "checked_rules", "notes", "generated_at", "data"} <= set(report)
    assert report["data"]["store"] == "GeoPackage gaoming.gpkg" and report["synthetic_data"] is True
    html = as_html.read_text(encoding="utf-8")
    assert "建设项目选址合规性审查报告" in html and "不通过" in html and "<svg" in html
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    assert _digest(demo_store_path) == digest


def test_a_clear_site_passes(demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boundary = gpd.read_file(demo_store_path, layer="dev_boundary").to_crs(METRIC_CRS)
    blocked = shapely.union_all(
        [
            gpd.read_file(demo_store_path, layer=name).to_crs(METRIC_CRS).union_all()
            for name in ("eco_redlines", "basic_farmland")
        ]
    )
    centre = shapely.difference(boundary.union_all(), blocked).buffer(-60).representative_point()
    site = gpd.GeoDataFrame(geometry=[centre.buffer(30, quad_segs=4)], crs=METRIC_CRS)
    path = tmp_path / "clear.gpkg"
    site.to_file(path, driver="GPKG")  # a GeoPackage in EPSG:4547: the file's CRS is used
    assert main(["check-site", str(path), "--store", str(demo_store_path)]) == 0
    assert "PASS (通过)" in capsys.readouterr().out


def test_gcj02_site_with_crs_gives_the_same_hits(demo_store_path: Path, on_red_line: Path, tmp_path: Path) -> None:
    truth_path, amap_path = tmp_path / "truth.json", tmp_path / "amap.json"
    assert main(["check-site", str(on_red_line), "--store", str(demo_store_path), "-o", str(truth_path)]) == 0
    frame = gpd.read_file(on_red_line)

    def to_gcj(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(wgs84_to_gcj02(coords[:, 0], coords[:, 1]))

    shifted = frame.set_geometry(shapely.transform(frame.geometry.to_numpy(), to_gcj))
    site = tmp_path / "amap.geojson"
    shifted.to_file(site, driver="GeoJSON")
    assert main(["check-site", str(site), "--crs", "gcj02", "--store", str(demo_store_path), "-o", str(amap_path)]) == 0
    truth, amap = (json.loads(p.read_text(encoding="utf-8")) for p in (truth_path, amap_path))
    assert amap["site_area_m2"] == pytest.approx(truth["site_area_m2"], rel=1e-3)
    assert {h["rule"]: h["overlap_m2"] for h in amap["hits"]} == pytest.approx(
        {h["rule"]: h["overlap_m2"] for h in truth["hits"]}, rel=1e-3
    )


def test_bowtie_is_repaired_with_a_note_and_refused_with_strict(
    demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = [[112.86, 22.89], [112.862, 22.892], [112.862, 22.89], [112.86, 22.892], [112.86, 22.89]]
    path = _write(tmp_path, "bowtie.geojson", {"type": "Polygon", "coordinates": [ring]})
    assert main(["check-site", str(path), "--store", str(demo_store_path)]) == 0
    assert "make_valid" in " ".join(capsys.readouterr().out.split())
    assert main(["check-site", str(path), "--store", str(demo_store_path), "--strict"]) == 2
    assert "invalid" in " ".join(capsys.readouterr().err.split())


BAD = {
    "point.geojson": ({"type": "Point", "coordinates": [112.86, 22.89]}, "it is a Point"),
    "line.geojson": ({"type": "LineString", "coordinates": [[112.86, 22.89], [112.87, 22.9]]}, "LineString"),
    "two.geojson": (
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(shapely.box(*b)))}
                for b in ((112.86, 22.89, 112.862, 22.892), (112.87, 22.89, 112.872, 22.892))
            ],
        },
        "one site per check; got 2 features",
    ),
    "far.geojson": (json.loads(shapely.to_geojson(shapely.box(113.5, 23.5, 113.502, 23.502))), "outside the district"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_sites_exit_2_with_a_reason_and_no_report(
    name: str, demo_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = _digest(demo_store_path)
    document, reason = BAD[name]
    path = _write(tmp_path, name, document)
    report = tmp_path / "report.html"
    assert main(["check-site", str(path), "--store", str(demo_store_path), "-o", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and reason in " ".join(err.split())
    assert not report.exists() and _digest(demo_store_path) == digest


def test_bad_options_and_files_exit_2(
    demo_store_path: Path, on_red_line: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.geojson"
    garbage.write_bytes(b"\x89PNG not geodata at all")
    cases = [
        (["check-site", str(garbage)], "garbage.geojson"),
        (["check-site", str(tmp_path / "missing.geojson")], "no such file"),
        (["check-site", str(on_red_line), "-o", str(tmp_path / "report.txt")], ".html or .json"),
        (["check-site", str(on_red_line), "-o", str(tmp_path / "nowhere" / "r.json")], "does not exist"),
        (["check-site", str(on_red_line), "--crs", "EPSG:999999"], "unknown coordinate system"),
        (["check-site", str(on_red_line), "--rules", str(tmp_path / "none.yaml")], "not found"),
    ]
    digest = _digest(demo_store_path)
    for argv, reason in cases:
        assert main([*argv, "--store", str(demo_store_path)]) == 2, argv
        assert reason in " ".join(capsys.readouterr().err.split()), argv  # rich wraps long lines
    assert main(["check-site", str(on_red_line), "--store", str(tmp_path / "no-store.gpkg")]) == 2
    assert "no store" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "no-store.gpkg").exists() and _digest(demo_store_path) == digest

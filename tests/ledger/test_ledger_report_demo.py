"""The campaign report (XLSX + HTML) and the demo's stand-in reviewer."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import gpxpy
import pytest
from openpyxl import load_workbook
from shapely.geometry import box, mapping

from skysieve.cli import main
from skysieve.ledger import (
    DEMO_REVIEWER,
    assign,
    audit_trail,
    decide,
    demo_ledger,
    get_detection,
    list_suspects,
    make_report,
    push_to_suspects,
    set_status,
)
from skysieve.ledger.dispatch import find_cjk_font
from skysieve.schema import IMAGES


def _images(ws, geoms) -> None:
    ws.layer(IMAGES)
    ws.gpkg.insert(IMAGES.name, [{"image_id": f"f/{i}.jpg", "flight_id": "f", "path": f"/x/{i}.jpg",
                                  "status": status, "geometry": g} for i, (g, status) in enumerate(geoms)])


def test_report_counts_by_township_and_county(survey, detection_factory, tmp_path: Path) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    # accepted photos cover the west half of cell A (twice, overlapping); a rejected one covers cell B
    _images(ws, [(box(x0, y0, x0 + 125, y0 + 250), "accepted"), (box(x0, y0, x0 + 100, y0 + 250), "accepted"),
                 (box(x0 + 250, y0, x0 + 500, y0 + 250), "rejected")])
    for i in range(4):
        detection_factory(f"a{i}", x0 + 20 + 50 * i, y0 + 20)
    detection_factory("b0", x0 + 300, y0 + 100)
    detection_factory("b1", x0 + 400, y0 + 100)
    decide(ws, "a0", "confirmed", "li", category="unlicensed_workshop")
    decide(ws, "a1", "rejected", "li")
    decide(ws, "a3", "confirmed", "li")
    decide(ws, "b0", "confirmed", "li", category="over_scope")
    sids = push_to_suspects(ws, "li")
    assert len(sids) == 3
    s_b = next(s for s in list_suspects(ws) if s["township"] == "大堡头镇")["suspect_id"]
    assign(ws, s_b, "t", "zhang")
    set_status(ws, s_b, "verified_illegal", "zhang")
    set_status(ws, s_b, "disposed", "zhang", measure="dismantle")
    report = make_report(ws, tmp_path / "rep")
    t = {row.township: row for row in report.stats.townships}
    a, b, c = t["丹朱镇"], t["大堡头镇"], report.stats.county
    assert (a.cells, a.cells_flown, round(a.coverage_pct, 1)) == (1, 1, 50.0)
    assert (b.cells, b.cells_flown, b.coverage_pct) == (1, 0, 0.0)  # a rejected photo covers nothing
    assert (a.flags, a.flags_reviewed, b.flags, b.flags_reviewed) == (4, 3, 2, 1)
    assert (a.suspects, a.by_category["unlicensed_workshop"], a.by_category[""]) == (2, 1, 1)
    assert (b.by_category["over_scope"], b.by_status["disposed"], b.measures["dismantle"], b.disposed) == (1, 1, 1, 1)
    assert (a.disposed, report.stats.county.disposed) == (0, 1)
    assert (c.cells, c.flags, c.suspects, round(c.coverage_pct, 1)) == (2, 6, 3, 25.0)
    # where a mosaic was built, its own coverage counts (a broken report falls back to the photos)
    (ws.cell_dir(survey["a"]) / "ortho.json").write_text(json.dumps({"cell_covered": 0.8}))
    assert round(make_report(ws, tmp_path / "rep2").stats.county.coverage_pct, 1) == 40.0
    (ws.cell_dir(survey["a"]) / "ortho.json").write_text("{broken")
    assert round(make_report(ws, tmp_path / "rep3").stats.county.coverage_pct, 1) == 25.0

    wb = load_workbook(report.xlsx)
    sheet = wb["乡镇汇总 Townships"]
    rows = [[cell.value for cell in r] for r in sheet.iter_rows()]
    header = rows[0]
    by_name = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(by_name) == {"丹朱镇", "大堡头镇", "全县 County"}
    county = by_name["全县 County"]
    assert county["发现 Flags"] == 6 and county["疑似点 Suspects"] == 3 and county["覆盖率 Coverage %"] == 25.0
    assert by_name["大堡头镇"]["(1) 化工企业超范围生产储存"] == 1
    assert by_name["大堡头镇"]["拆除生产储存装置、清理原料产品"] == 1
    assert by_name["全县 County"]["已处置 Disposed of"] == 1
    assert wb["疑似点 Suspects"].max_row == 4
    page = report.html.read_text(encoding="utf-8")
    assert "<svg" in page and page.count("<circle") == 3 and page.count("<polygon") == 2
    assert "丹朱镇" in page and "大堡头镇" in page and "25.0%" in page


def test_report_cli_on_an_empty_workspace(tmp_path: Path, capsys) -> None:
    from skysieve.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    assert main(["report", str(ws.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["suspects"] == 0 and out["townships"] == 0 and Path(out["xlsx"]).exists()
    assert "(no cells or suspects to map)" in Path(out["html"]).read_text(encoding="utf-8")


def _truth(ws, path: Path, objects) -> Path:
    """A truth file as the synthetic world writes it: projected CRS named in a 'crs' member."""
    epsg = ws.crs.to_epsg()
    feats = [{"type": "Feature", "geometry": mapping(g), "properties": {"object_id": f"O{i}", "class": cls}}
             for i, (cls, g) in enumerate(objects)]
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": f"urn:ogc:def:crs:EPSG::{epsg}"}}, "features": feats}))
    return path


@pytest.mark.slow
def test_demo_ledger_reviews_against_truth_and_writes_everything(survey, detection_factory, tmp_path: Path) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    truth = _truth(ws, tmp_path / "objects.geojson", [
        ("tank", box(x0 + 100, y0 + 145, x0 + 105, y0 + 150)),  # in site F001
        ("chimney", box(x0 + 300, y0 + 99, x0 + 302, y0 + 101)),
        ("drum_stockpile", box(x0 + 20, y0 + 20, x0 + 24, y0 + 24)),
    ])
    detection_factory("hit1", x0 + 102.8, y0 + 147.1, site_id="F001")  # centre inside the tank
    detection_factory("hit2", x0 + 302.6, y0 + 100, cls="chimney")  # 0.6 m from the chimney
    detection_factory("wrongclass", x0 + 22, y0 + 22, cls="tank")  # on the drums, wrong class
    detection_factory("far", x0 + 200, y0 + 200)  # nothing there
    summary = demo_ledger(ws, truth, out_dir=tmp_path / "exports")
    assert (summary["confirmed"], summary["rejected"], summary["suspects"]) == (2, 2, 2)
    assert get_detection(ws, "wrongclass")["review_status"] == "rejected"
    assert get_detection(ws, "hit1")["category"] == "affiliation_rental"  # guessed from the idle factory
    assert all(a["who"] == DEMO_REVIEWER for a in audit_trail(ws))
    assert "stand-in" in DEMO_REVIEWER
    assert {s["status"] for s in list_suspects(ws)} == {"dispatched"}
    assert {s["team"] for s in list_suspects(ws)} == {"丹朱镇核查组", "大堡头镇核查组"}
    out = tmp_path / "exports"
    assert len(json.loads((out / "suspects.geojson").read_text())["features"]) == 2
    assert len(gpxpy.parse((out / "suspects.gpx").read_text()).waypoints) == 2
    ET.parse(out / "suspects.kml")
    assert "doc.kml" in zipfile.ZipFile(out / "suspects.kmz").namelist()
    assert (out / "suspects.csv").exists() and (out / "suspects.gpkg").exists()
    assert sorted(p.name for p in (out / "dispatch").glob("*.html")) == ["dispatch-丹朱镇核查组.html",
                                                                        "dispatch-大堡头镇核查组.html"]
    try:
        find_cjk_font()
        assert len(list((out / "dispatch").glob("*.pdf"))) == 2 and summary["export_errors"] == {}
    except Exception:
        assert "pdf" in summary["export_errors"]
    assert Path(summary["report"]["xlsx"]).exists() and Path(summary["report"]["html"]).exists()
    # rerun: nothing pending, nothing new, same files
    again = demo_ledger(ws, truth, out_dir=out)
    assert (again["confirmed"], again["rejected"], again["suspects_created"], again["suspects"]) == (0, 0, 0, 2)


def test_demo_ledger_without_truth_uses_the_score(survey, detection_factory, tmp_path: Path) -> None:
    ws = survey["ws"]
    detection_factory("hi", survey["x0"] + 10, survey["y0"] + 10, score=0.9)
    detection_factory("lo", survey["x0"] + 100, survey["y0"] + 10, score=0.2)
    summary = demo_ledger(ws, None, out_dir=tmp_path / "e")
    assert (summary["confirmed"], summary["rejected"], summary["truth_objects"]) == (1, 1, None)
    assert "no truth given" in get_detection(ws, "lo")["note"]


def test_demo_ledger_bad_truth_file_says_what_to_do(survey, tmp_path: Path) -> None:
    from skysieve.errors import DatasetError

    (tmp_path / "t.geojson").write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read the truth file"):
        demo_ledger(survey["ws"], tmp_path / "t.geojson")

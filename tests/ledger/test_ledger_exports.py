"""Field exports open in standard readers, with coordinates in the right order and place, text escaped."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import gpxpy
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from skysieve.cli import main
from skysieve.errors import ExportError
from skysieve.ledger import (
    SuspectFilter,
    assign,
    decide,
    export_suspects,
    field_records,
    push_to_suspects,
    set_status,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from skysieve.ledger.dispatch import find_cjk_font
from skysieve.ledger.field_formats import neutralise_formula

KML = "{http://www.opengis.net/kml/2.2}"
NASTY = '=HYPERLINK("http://x.example/?a=1&b=2","点我") <b>"quoted" & \'single\'</b>\x07'
NASTY_CLEAN = NASTY.replace("\x07", "")


@pytest.fixture
def ledger(survey, detection_factory) -> dict[str, Any]:
    """Three suspects: S00001 in the site (chips, nasty note, team A), S00002 in cell B (team B), S00003 undispatched."""
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 102.5, y0 + 147.5, candidate_id="c1", site_id="F001")
    detection_factory("d2", x0 + 110, y0 + 120, candidate_id="c1", site_id="F001", cls="chimney")
    detection_factory("d3", x0 + 320, y0 + 60, cls="drum_stockpile")
    detection_factory("d4", x0 + 40, y0 + 230)
    decide(ws, "d1", "confirmed", "li", note=NASTY, category="name_mismatch")
    for d in ("d2", "d3", "d4"):
        decide(ws, d, "confirmed", "li")
    ids = push_to_suspects(ws, "li", det_ids=["d1", "d2"]) + push_to_suspects(ws, "li", det_ids=["d3"]) \
        + push_to_suspects(ws, "li", det_ids=["d4"])
    assert ids == ["S00001", "S00002", "S00003"]
    assign(ws, "S00001", "丹朱镇一组", "zhang")
    assign(ws, "S00002", "-team <b>", "zhang")
    set_status(ws, "S00002", "verified_illegal", "zhang")
    records = {r.suspect_id: r for r in field_records(ws)}
    return {"ws": ws, "records": records, **survey}


def _close(a: float, b: float, metres: float = 0.05) -> bool:
    return abs(a - b) * 111_000 < metres


def test_geojson_is_rfc7946_lonlat(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "geojson", tmp_path / "s.geojson").paths[0]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc and len(doc["features"]) == 3
    for f in doc["features"]:
        r = ledger["records"][f["id"]]
        lon, lat = f["geometry"]["coordinates"]
        assert 112.8 < lon < 113.0 and 36.0 < lat < 36.2  # lon first, in Zhangzi county
        assert _close(lon, r.lon) and _close(lat, r.lat)
        assert shape(f["geometry"]).is_valid
        assert "gcj_lon" not in f["properties"]  # offset datums are for phone maps only
    props = next(f["properties"] for f in doc["features"] if f["id"] == "S00001")
    assert props["note"] == NASTY and props["category"] == "name_mismatch" and props["township"] == "丹朱镇"
    # and OGR reads it
    meta, _, geoms, _ = pyogrio.raw.read(out)
    assert meta["crs"] == "EPSG:4326" and len(geoms) == 3


def test_kml_parses_with_styles_escaped_text_and_lonlat(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "kml", tmp_path / "s.kml").paths[0]
    root = ET.parse(out).getroot()
    assert root.tag == f"{KML}kml"
    styles = {s.get("id") for s in root.iter(f"{KML}Style")}
    assert {"status-suspected", "status-dispatched", "status-verified_illegal", "status-closed"} <= styles
    marks = {pm.get("id"): pm for pm in root.iter(f"{KML}Placemark")}
    assert set(marks) == {"S00001", "S00002", "S00003"}
    for sid, pm in marks.items():
        r = ledger["records"][sid]
        assert pm.find(f"{KML}styleUrl").text == f"#status-{r.status}"
        lon, lat, _ = (float(v) for v in pm.find(f".//{KML}Point/{KML}coordinates").text.split(","))
        assert _close(lon, r.lon) and _close(lat, r.lat)
        data = {d.get("name"): d.find(f"{KML}value").text for d in pm.iter(f"{KML}Data")}
        assert data["status"] == r.status
    s1 = marks["S00001"]
    data = {d.get("name"): d.find(f"{KML}value").text for d in s1.iter(f"{KML}Data")}
    assert data["note"] == NASTY_CLEAN  # escaped on write, identical on read, control char dropped
    ring = s1.find(f".//{KML}Polygon//{KML}coordinates").text.split()
    poly = shapely.Polygon([tuple(map(float, p.split(",")[:2])) for p in ring])
    assert poly.contains(shapely.Point(ledger["records"]["S00001"].lon, ledger["records"]["S00001"].lat))
    assert "&lt;b&gt;" in s1.find(f"{KML}description").text  # the note is text inside the HTML balloon


def test_kmz_carries_the_evidence_chips(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "kmz", tmp_path / "s.kmz").paths[0]
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert names[0] == "doc.kml"
        chips = [n for n in names if n.startswith("files/")]
        assert chips == ["files/d1.png", "files/d2.png", "files/d4.png"]  # cell B (d3) has no mosaic
        assert all(z.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in chips)
        root = ET.fromstring(z.read("doc.kml"))
    desc = next(pm for pm in root.iter(f"{KML}Placemark") if pm.get("id") == "S00001").find(f"{KML}description").text
    assert 'src="files/d1.png"' in desc and 'src="files/d2.png"' in desc and "d4.png" not in desc


def test_gpx_waypoints_read_back_with_gpxpy(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "gpx", tmp_path / "s.gpx").paths[0]
    gpx = gpxpy.parse(out.read_text(encoding="utf-8"))
    assert len(gpx.waypoints) == 3
    for w in gpx.waypoints:
        r = ledger["records"][w.name.split()[0]]
        assert _close(w.longitude, r.lon) and _close(w.latitude, r.lat)
        assert w.type == r.status
    w1 = next(w for w in gpx.waypoints if w.name.startswith("S00001"))
    assert w1.name == "S00001 丹朱镇 东关村" and NASTY_CLEAN in w1.description
    assert w1.link.startswith("https://uri.amap.com/navigation?to=") and "&mode=car" in w1.link


def test_csv_has_three_datums_and_no_live_formulas(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "csv", tmp_path / "s.csv").paths[0]
    assert out.read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM: Excel opens the Chinese right
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = {r["suspect_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"S00001", "S00002", "S00003"}
    for sid, row in rows.items():
        r = ledger["records"][sid]
        lon, lat = float(row["lon"]), float(row["lat"])
        assert _close(lon, r.lon, 0.02) and _close(lat, r.lat, 0.02)
        g = wgs84_to_gcj02(lon, lat)
        b = wgs84_to_bd09(lon, lat)
        assert _close(float(row["gcj_lon"]), g[0], 0.02) and _close(float(row["gcj_lat"]), g[1], 0.02)
        assert _close(float(row["bd_lon"]), b[0], 0.02) and _close(float(row["bd_lat"]), b[1], 0.02)
        assert 300 < (float(row["gcj_lon"]) - lon) * 90_000 < 800  # GCJ-02 is offset by hundreds of metres here
    assert rows["S00001"]["note"] == "'" + NASTY  # the formula is inert text
    assert rows["S00002"]["team"] == "'-team <b>"
    assert rows["S00001"]["det_ids"] == "d1 d2"
    rec = ledger["records"]["S00001"]
    assert f"to={rec.gcj_lon:.6f},{rec.gcj_lat:.6f}," in rows["S00001"]["amap_uri"]
    stored = {r[1] for r in ledger["ws"].gpkg.connection().execute("PRAGMA table_info(suspects)")}
    assert not any("gcj" in c or "bd" in c for c in stored)  # offset datums are never stored
    for row in rows.values():
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=cmd", "'\t=cmd"), ("\r=cmd", "'\r=cmd"), ("tank x2", "tank x2"), ("储罐=2", "储罐=2"), ("", ""),
])
def test_formula_neutralisation(text: str, expected: str) -> None:
    assert neutralise_formula(text) == expected


def test_gpkg_reads_in_ogr_as_wgs84(ledger, tmp_path: Path) -> None:
    out = export_suspects(ledger["ws"], "gpkg", tmp_path / "s.gpkg").paths[0]
    layers = {name for name, _ in pyogrio.list_layers(out)}
    assert layers == {"suspects", "suspect_outlines"}
    meta, _, geoms, fields = pyogrio.raw.read(out, layer="suspects")
    assert meta["crs"] == "EPSG:4326" and meta["geometry_type"] == "Point"
    cols = dict(zip(meta["fields"], fields, strict=True))
    for sid, wkb in zip(cols["suspect_id"], geoms, strict=True):
        p, r = shapely.from_wkb(wkb), ledger["records"][sid]
        assert _close(p.x, r.lon, 1e-4) and _close(p.y, r.lat, 1e-4)
    assert NASTY in list(cols["note"])
    if shutil.which("ogrinfo"):
        res = subprocess.run(["ogrinfo", "-so", "-al", str(out)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "Feature Count: 3" in res.stdout and "WGS 84" in res.stdout


def test_filters_select_by_status_team_township(ledger, tmp_path: Path) -> None:
    ws = ledger["ws"]
    r = export_suspects(ws, "geojson", tmp_path / "a.geojson", SuspectFilter(statuses=("dispatched",)))
    assert r.count == 1
    assert [f["id"] for f in json.loads(r.paths[0].read_text())["features"]] == ["S00001"]
    assert export_suspects(ws, "csv", tmp_path / "b.csv", SuspectFilter(team="-team <b>")).count == 1
    assert export_suspects(ws, "gpx", tmp_path / "c.gpx", SuspectFilter(townships=("丹朱镇",))).count == 2
    empty = export_suspects(ws, "kml", tmp_path / "d.kml", SuspectFilter(townships=("nowhere",)))
    assert empty.count == 0 and ET.parse(empty.paths[0]).getroot().tag == f"{KML}kml"
    with pytest.raises(ExportError, match="unknown suspect status"):
        SuspectFilter(statuses=("done",))
    with pytest.raises(ExportError, match="unknown export format 'shp'"):
        export_suspects(ws, "shp", tmp_path / "x.shp")
    with pytest.raises(ExportError, match="go to a folder"):
        export_suspects(ws, "html", tmp_path / "x.html")
    with pytest.raises(ExportError, match="is a folder"):
        export_suspects(ws, "csv", tmp_path)


def test_cli_push_reports_what_it_skipped(survey, detection_factory, capsys) -> None:
    ws = survey["ws"]
    detection_factory("p1", survey["x0"] + 10, survey["y0"] + 10)
    detection_factory("p2", survey["x0"] + 200, survey["y0"] + 10)
    decide(ws, "p1", "confirmed", "li")
    assert main(["suspects", str(ws.root), "push", "--by", "li", "--det", "p1", "p2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["created"] == ["S00001"] and out["skipped"] == {"p2": "not confirmed (review status pending)"}


def test_cli_export_each_format(ledger, tmp_path: Path, capsys) -> None:
    root = str(ledger["ws"].root)
    for fmt in ("geojson", "kml", "kmz", "gpx", "csv", "gpkg"):
        assert main(["suspects", root, "export", "--format", fmt, "--status", "dispatched,verified_illegal",
                     str(tmp_path / f"s.{fmt}")]) == 0
        assert f"2 suspects exported as {fmt}" in capsys.readouterr().out
        assert (tmp_path / f"s.{fmt}").stat().st_size > 0
    assert main(["suspects", root, "export", "--format", "geojson", "--township", "大堡头镇", "--json",
                 str(tmp_path / "t.geojson")]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 1
    with pytest.raises(SystemExit):
        main(["suspects", root, "export", "--format", "csv", "--status", "done", str(tmp_path / "x.csv")])
    assert "unknown status 'done'" in capsys.readouterr().err


def test_html_dispatch_sheet_per_team(ledger, tmp_path: Path) -> None:
    r = export_suspects(ledger["ws"], "html", tmp_path / "sheets")
    names = sorted(p.name for p in r.paths)
    assert names == ["dispatch-team_b.html", "dispatch-丹朱镇一组.html", "dispatch-未分配.html"]
    page = (tmp_path / "sheets" / "dispatch-丹朱镇一组.html").read_text(encoding="utf-8")
    rec = ledger["records"]["S00001"]
    assert page.count('<section class="sheet">') == 1
    assert f"{rec.gcj_lon:.6f},{rec.gcj_lat:.6f}" in page  # Amap navigation with GCJ-02
    assert f"{rec.lat:.6f} N, {rec.lon:.6f} E" in page and f"{rec.gcj_lat:.6f} N" in page
    assert page.count("data:image/png;base64,") == 4  # map chip, QR code, two evidence chips
    assert "<b>" not in page and "&lt;b&gt;" in page  # the note is shown, not run
    assert "现场核查情况" in page


def _decode_qr(png: bytes) -> str:
    """Decode a QR code with OpenCV, restoring the Qt variables cv2 sets on import (they break napari)."""
    import io
    import os

    import numpy as np
    from PIL import Image

    saved = {k: os.environ.get(k) for k in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")}
    try:
        import cv2

        img = np.pad(np.asarray(Image.open(io.BytesIO(png)).convert("L")), 20, constant_values=255)
        img = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
        return cv2.QRCodeDetector().detectAndDecode(img)[0]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_dispatch_qr_code_opens_amap_navigation_in_gcj02(ledger, tmp_path: Path) -> None:
    import base64
    import re
    from urllib.parse import parse_qs, urlparse

    export_suspects(ledger["ws"], "html", tmp_path / "sheets", SuspectFilter(team="丹朱镇一组"))
    page = (tmp_path / "sheets" / "dispatch-丹朱镇一组.html").read_text(encoding="utf-8")
    qr = re.search(r'<img class="qr" src="data:image/png;base64,([^"]+)"', page).group(1)
    url = urlparse(_decode_qr(base64.b64decode(qr)))
    assert (url.scheme, url.netloc, url.path) == ("https", "uri.amap.com", "/navigation")
    query = parse_qs(url.query)
    lon, lat, name = query["to"][0].split(",")
    rec = ledger["records"]["S00001"]
    assert (float(lon), float(lat), name) == (pytest.approx(rec.gcj_lon, abs=1e-6), pytest.approx(rec.gcj_lat, abs=1e-6),
                                             "S00001")
    assert query["coordinate"] == ["gaode"]


def test_map_chip_marks_the_spot_on_the_mosaic(ledger) -> None:
    from skysieve.ledger.dispatch import SheetSettings, map_chip

    rgb = map_chip(ledger["ws"], ledger["records"]["S00001"], SheetSettings(map_side_m=80, map_px=160))
    assert rgb.shape == (160, 160, 3)
    assert (rgb[..., 0] > 200).sum() > 30  # red ring (and the red test tank)
    assert rgb[5:20, 5:20].std() > 3  # mosaic texture, not the grey of no data


@pytest.mark.slow
def test_pdf_dispatch_sheet_renders_chinese(ledger, tmp_path: Path) -> None:
    try:
        find_cjk_font()
    except ExportError as e:
        pytest.skip(str(e))
    pypdf = pytest.importorskip("pypdf")
    r = export_suspects(ledger["ws"], "pdf", tmp_path / "sheets", SuspectFilter(team="丹朱镇一组"))
    [path] = r.paths
    reader = pypdf.PdfReader(path)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "派发核查单 S00001" in text and "丹朱镇" in text and "名称含生物" in text

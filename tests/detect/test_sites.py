"""``skysieve sites import``: registers and leads from CSV, GeoJSON and GeoPackage into the sites layer."""

from __future__ import annotations

import json
import math

import pytest
import shapely

from skysieve.cli import main
from skysieve.sites import POINT_RADIUS_M, SiteImportError, import_sites
from skysieve.workspace import Workspace

LON, LAT = 112.88, 36.12


@pytest.fixture
def ws(tmp_path):
    return Workspace.create(tmp_path / "ws", crs="EPSG:4547")


def test_csv_points_become_circles_and_bad_rows_are_rejected_with_reasons(ws, tmp_path):
    csv = tmp_path / "register.csv"
    csv.write_text("lon,lat,kind,name\n"
                   f"{LON},{LAT},closed_enterprise,Old dye works\n"
                   f"{LON + 0.001},{LAT},idle_factory,Empty shed\n"
                   f"{LON},{LAT + 0.001},brewery,Unknown kind\n"
                   f",{LAT},farm,No position\n", encoding="utf-8")
    res = import_sites(ws, csv)
    assert res.imported == 2 and res.by_kind == {"closed_enterprise": 1, "idle_factory": 1}
    reasons = dict(res.rejected)
    assert "unknown kind 'brewery'" in reasons["row 3 (Unknown kind)"]
    assert "no position" in reasons["row 4 (No position)"]
    rows = ws.gpkg.select("sites", order_by="name")
    area = rows[0]["geometry"].area
    assert area == pytest.approx(math.pi * POINT_RADIUS_M ** 2, rel=0.02)
    centre = rows[0]["geometry"].centroid
    assert ws.to_lonlat(centre.x, centre.y)[0] == pytest.approx(LON + 0.001, abs=1e-6)


def test_chinese_headers_and_kinds_in_a_gbk_csv(ws, tmp_path):
    csv = tmp_path / "台账.csv"
    csv.write_bytes(f"经度,纬度,类型,名称\n{LON},{LAT},关停企业,某化工厂\n{LON},{LAT + 0.002},线索,用电异常\n"
                    .encode("gb18030"))
    res = import_sites(ws, csv)
    assert res.by_kind == {"closed_enterprise": 1, "lead": 1}
    assert {r["name"] for r in ws.gpkg.select("sites")} == {"某化工厂", "用电异常"}


def test_sites_far_outside_the_workspace_or_at_zero_zero_are_rejected_and_the_rest_imported(ws, tmp_path):
    """A blank position exported as 0,0, a site of another province, a typo'd longitude: each would land
    hundreds of km off in the workspace's grid zone (EPSG:4547, 112.5-115.5 E). Each is rejected with its
    reason; the good rows go in."""
    csv = tmp_path / "register.csv"
    csv.write_text("经度,纬度,类型,名称\n"
                   f"{LON},{LAT},废弃工厂,Good\n"
                   f"0,0,idle_factory,Blank\n"
                   f"120.5,{LAT},farm,Other province\n"
                   f"-93.2,45.0,farm,Minnesota\n", encoding="utf-8")
    res = import_sites(ws, csv)
    assert res.imported == 1 and res.by_kind == {"idle_factory": 1}
    reasons = dict(res.rejected)
    assert "0, 0" in reasons["row 2 (Blank)"]
    for label in ("row 3 (Other province)", "row 4 (Minnesota)"):
        assert "outside the workspace's area" in reasons[label] and "112.5 to 115.5 E" in reasons[label]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"lon,lat,kind\n{LON},{LAT},brewery\n", encoding="utf-8")
    assert "关停企业" in dict(import_sites(ws, bad).rejected)["row 1"]  # the hint lists the register's wording too


def test_reimporting_a_corrected_register_replaces_rows(ws, tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text(f"site_id,lon,lat,kind,name\nS1,{LON},{LAT},idle_house,first\n", encoding="utf-8")
    import_sites(ws, csv)
    csv.write_text(f"site_id,lon,lat,kind,name\nS1,{LON},{LAT},idle_house,corrected\n", encoding="utf-8")
    import_sites(ws, csv)
    rows = ws.gpkg.select("sites")
    assert [r["name"] for r in rows] == ["corrected"]


def test_geojson_polygons_keep_their_shape(ws, tmp_path):
    ring = [(LON, LAT), (LON + 0.001, LAT), (LON + 0.001, LAT + 0.001), (LON, LAT + 0.001), (LON, LAT)]
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "scrap_yard", "name": "Yard"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    path = tmp_path / "yards.geojson"
    path.write_text(json.dumps(gj), encoding="utf-8")
    assert import_sites(ws, path).imported == 1
    yard = ws.gpkg.select("sites")[0]["geometry"]
    assert 80 * 110 < yard.area < 95 * 115  # about 0.001 deg x 0.001 deg at 36 N, in metres


def test_geopackage_layer_in_utm(ws, tmp_path):
    import numpy as np
    import pyogrio
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32649, always_xy=True).transform(LON, LAT)
    path = tmp_path / "leads.gpkg"
    pyogrio.raw.write(path, geometry=np.array([shapely.to_wkb(shapely.Point(x, y))], dtype=object),
                      field_data=[np.array(["lead"], dtype=object), np.array(["truck stop"], dtype=object)],
                      fields=["kind", "name"], geometry_type="Point", crs="EPSG:32649", driver="GPKG", layer="leads")
    res = import_sites(ws, path)
    assert res.by_kind == {"lead": 1}
    c = ws.gpkg.select("sites")[0]["geometry"].centroid
    lon, lat = ws.to_lonlat(c.x, c.y)
    assert (lon, lat) == (pytest.approx(LON, abs=1e-6), pytest.approx(LAT, abs=1e-6))


def test_unknown_file_type_and_missing_file(ws, tmp_path):
    bad = tmp_path / "sites.xlsx"
    bad.write_bytes(b"x")
    with pytest.raises(SiteImportError, match="unknown site file type"):
        import_sites(ws, bad)
    with pytest.raises(SiteImportError, match="not found"):
        import_sites(ws, tmp_path / "nope.csv")


def test_cli_sites_import_fixes_the_crs_of_a_fresh_workspace(tmp_path, capsys):
    root = tmp_path / "fresh"
    Workspace.create(root)
    csv = tmp_path / "r.csv"
    csv.write_text(f"lon,lat,kind,name\n{LON},{LAT},farm,Pig farm\n", encoding="utf-8")
    assert main(["sites", "import", str(root), str(csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["imported"] == 1 and out["by_kind"] == {"farm": 1}
    assert Workspace.open(root).crs.to_epsg() == 4547  # CGCS2000 GK zone of 112.88 E


def test_a_stray_first_row_does_not_fix_the_crs_of_a_fresh_workspace(tmp_path):
    """The CRS comes from the rows' median: a first row in another zone is rejected, not obeyed."""
    ws = Workspace.create(tmp_path / "fresh")
    csv = tmp_path / "register.csv"
    csv.write_text("lon,lat,kind\n120.5,30.2,farm\n" + "".join(f"{113.9 + i * 0.01},30.6,idle_factory\n" for i in range(3)),
                   encoding="utf-8")
    res = import_sites(ws, csv)
    assert res.imported == 3 and [r for r, _ in res.rejected] == ["row 1"]
    assert Workspace.open(ws.root).settings.crs == "EPSG:4547"  # 3-degree zone at 114 E

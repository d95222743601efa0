"""The workspace, its GeoPackage and the grid: real files on disk, read back through OGR."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pyogrio
import pytest
from pyproj import CRS
from shapely.geometry import Point, box, mapping

from skysieve import Workspace
from skysieve.cli import main
from skysieve.crs import choose_crs, from_lonlat
from skysieve.errors import CRSError, GridError, UsageError, WorkspaceExistsError, WorkspaceNotFoundError
from skysieve.gpkg import Column, GeoPackage, LayerSpec, decode_geometry, encode_geometry
from skysieve.grid import Cell


def test_choose_crs_china_gauss_kruger_elsewhere_utm() -> None:
    assert choose_crs(114.2, 30.5).to_epsg() == 4547  # CGCS2000 3-degree GK, CM 114 E
    assert choose_crs(112.88, 36.12).to_epsg() == 4547  # Zhangzi county is nearer 114 E than 111 E
    assert choose_crs(110.9, 36.0).to_epsg() == 4546  # CM 111 E
    assert choose_crs(-91.994, 46.84).to_epsg() == 32615  # Duluth: UTM 15 N
    assert choose_crs(151.2, -33.9).to_epsg() == 32756  # Sydney: UTM 56 S
    with pytest.raises(CRSError):
        choose_crs(200, 0)


def test_geometry_blob_round_trip() -> None:
    poly = box(576500.25, 5188000.5, 576750, 5188250)
    blob = encode_geometry(poly, 32615)
    assert blob[:2] == b"GP"
    assert decode_geometry(blob).equals(poly)
    assert decode_geometry(encode_geometry(Point(1, 2).buffer(0).boundary, 4326)) is not None


def test_init_creates_gpkg_that_ogr_reads(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:32615", cell_size_m=100)
    touched = ws.cells_touching(box(576610, 5188110, 576790, 5188195))
    assert sorted(c.cell_id for c in touched) == ["E576600N5188100", "E576700N5188100"]
    # cells are aligned to round coordinates
    for c in touched:
        minx, miny, maxx, maxy = c.geometry.bounds
        assert minx % 100 == 0 and miny % 100 == 0 and maxx - minx == 100
    layers = {name for name, _ in pyogrio.list_layers(ws.root / "survey.gpkg")}
    assert {"cells", "sites"} <= layers
    info = pyogrio.read_info(ws.root / "survey.gpkg", layer="cells")
    assert info["crs"] == "EPSG:32615" and info["features"] == 2
    assert info["total_bounds"] == (576600.0, 5188100.0, 576800.0, 5188200.0)
    # touching the same place again adds nothing
    ws.cells_touching(box(576610, 5188110, 576790, 5188195))
    assert ws.gpkg.count("cells") == 2


def test_init_refuses_existing_and_bad_arguments(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws", crs="EPSG:32615")
    with pytest.raises(WorkspaceExistsError):
        Workspace.create(tmp_path / "ws")
    with pytest.raises(CRSError, match="not a projected CRS"):
        Workspace.create(tmp_path / "ws2", crs="EPSG:4326")
    with pytest.raises(UsageError):
        Workspace.create(tmp_path / "ws3", grid=tmp_path / "g.geojson", cell_size_m=10)
    with pytest.raises(WorkspaceNotFoundError, match="skysieve init"):
        Workspace.open(tmp_path / "nothing")


def test_crs_is_chosen_from_first_position(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.crs is None
    assert ws.ensure_crs(112.88, 36.12).to_epsg() == 4547
    again = Workspace.open(tmp_path / "ws")
    assert again.crs == CRS.from_epsg(4547)
    assert again.gpkg.has_layer("cells")


def _county_grid(path: Path) -> Path:
    """A 2 x 2 county grid in WGS 84 with Chinese attribute names, as a county office would send it."""
    features = []
    for i, (lon, lat) in enumerate([(112.880, 36.120), (112.885, 36.120), (112.880, 36.124), (112.885, 36.124)]):
        features.append({
            "type": "Feature",
            "properties": {"网格编号": f"ZZ-{i + 1:03d}", "乡镇": "丹朱镇", "村": f"村{i}"},
            "geometry": mapping(box(lon, lat, lon + 0.005, lat + 0.004)),
        })
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def test_import_county_grid_any_crs(tmp_path: Path) -> None:
    grid = _county_grid(tmp_path / "grid.geojson")
    ws = Workspace.create(tmp_path / "ws", grid=grid)
    assert ws.crs.to_epsg() == 4547
    cells = ws.cells()
    assert [c.cell_id for c in cells] == ["ZZ-001", "ZZ-002", "ZZ-003", "ZZ-004"]
    assert cells[0].township == "丹朱镇" and cells[0].village == "村0"
    x, y = from_lonlat(ws.crs, 112.8825, 36.122)
    assert cells[0].geometry.contains(Point(x, y))
    # imported grids do not grow: a footprint outside touches nothing
    assert ws.cells_touching(box(x + 5000, y, x + 5100, y + 100)) == []
    assert [c.cell_id for c in ws.cells_touching(Point(x, y).buffer(5))] == ["ZZ-001"]
    # a footprint across the corner of all four cells touches each; cells added later are seen
    corner = Point(*from_lonlat(ws.crs, 112.885, 36.124)).buffer(20)
    assert [c.cell_id for c in ws.cells_touching(corner)] == ["ZZ-001", "ZZ-002", "ZZ-003", "ZZ-004"]
    far = box(x + 5000, y, x + 5100, y + 100)
    ws.add_cells([Cell("ZZ-005", far.buffer(10))], source="test")
    assert [c.cell_id for c in ws.cells_touching(far)] == ["ZZ-005"]
    # a cell replaced by another (same count, as when a grid is imported again) is seen too
    ws.gpkg.delete("cells", "cell_id=?", ("ZZ-005",))
    ws.add_cells([Cell("ZZ-006", far.buffer(10))], source="test")
    assert [c.cell_id for c in ws.cells_touching(far)] == ["ZZ-006"]


def test_bad_grid_files(tmp_path: Path) -> None:
    with pytest.raises(GridError, match="not found"):
        Workspace.create(tmp_path / "a", grid=tmp_path / "missing.geojson")
    junk = tmp_path / "junk.geojson"
    junk.write_text("this is not json")
    with pytest.raises(GridError, match="cannot read"):
        Workspace.create(tmp_path / "b", grid=junk)
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": 1}, "geometry": {"type": "Point", "coordinates": [112.9, 36.1]}}]}))
    with pytest.raises(GridError, match="no polygon"):
        Workspace.create(tmp_path / "c", grid=points)


def test_cli_init_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["init", str(tmp_path / "ws"), "--cell-size", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["grid"] == "regular" and out["crs"] is None
    assert main(["init", str(tmp_path / "ws")]) == 1
    assert "already exists" in capsys.readouterr().err


_NOTE = LayerSpec("notes", (Column("who", "TEXT"), Column("n", "INTEGER")), None)


def _writer(path: str, who: str, n: int) -> None:
    gp = GeoPackage(path)
    for i in range(n):
        gp.insert("notes", [{"who": who, "n": i}])


def test_two_processes_writing_lose_nothing(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:32615")
    ws.layer(_NOTE)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(ws.gpkg.path), w, 150)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert ws.gpkg.count("notes", "who='a'") == 150
    assert ws.gpkg.count("notes", "who='b'") == 150


def test_settings_unknown_key_warns_and_keeps_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:32615", cell_size_m=80)
    text = (ws.root / "skysieve.toml").read_text()
    (ws.root / "skysieve.toml").write_text(text.replace("[workspace]", "[workspace]\ncel_size_m = 3"))
    again = Workspace.open(ws.root)
    assert again.settings.cell_size_m == 80
    assert "cel_size_m" in caplog.text


def test_atomic_write_leaves_no_temp_and_normal_permissions(tmp_path: Path) -> None:
    import os
    import stat

    from skysieve.atomic import atomic_path, write_json

    target = write_json(tmp_path / "out" / "report.json", {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out" / "broken.tif") as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json"]


@pytest.mark.parametrize("size", ["0.01", "0.5", "-5", "50000"])
def test_cli_init_refuses_a_cell_size_no_flight_could_survey(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          size: str) -> None:
    """0.5 m cells made the next ingest grind for minutes building millions of cells; now init says so."""
    assert main(["init", str(tmp_path / "ws"), "--cell-size", size]) == 2
    err = capsys.readouterr().err
    assert "grid cell" in err and "20 to 10000 m" in err and "--cell-size" in err
    assert not (tmp_path / "ws").exists()  # nothing made


def test_cli_init_refuses_a_grid_file_without_geometries(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A CSV of sites given as the grid was a TypeError traceback; now a message and a hint."""
    csv = tmp_path / "sites.csv"
    csv.write_text("lon,lat,kind,name\n113.1,28.2,idle_factory,A\n", encoding="utf-8")
    assert main(["init", str(tmp_path / "ws"), "--grid", str(csv)]) == 1  # bad input data (usage errors are 2)
    err = capsys.readouterr().err
    assert "no geometries" in err and "sites import" in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()


def test_a_workspace_with_an_odd_cell_size_still_opens_but_grows_no_cells(tmp_path: Path) -> None:
    """Made before the range was checked (or edited by hand): it opens, so what it holds can be exported, and
    only growing regular cells refuses the size."""
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:32615")
    toml = ws.root / "skysieve.toml"
    toml.write_text(toml.read_text().replace("cell_size_m = 250.0", "cell_size_m = 5.0"))
    again = Workspace.open(ws.root)
    with pytest.raises(UsageError, match="outside 20 to 10000 m"):
        again.cells_touching(box(500000, 5000000, 500100, 5000100))


def test_a_workspace_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A read-only mount made report/detect/mosaic/ingest end in raw sqlite3 or OSError tracebacks."""
    import errno
    import sqlite3

    from skysieve.cli import _cannot_write

    db = tmp_path / "ro.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as e:
        con.execute("INSERT INTO t VALUES (1)")
    assert "cannot be written" in _cannot_write(e.value)
    assert "cannot write /ws/cells: Read-only file system" in _cannot_write(
        OSError(errno.EROFS, "Read-only file system", "/ws/cells"))
    assert "free some space" in _cannot_write(OSError(errno.ENOSPC, "No space left on device", "/ws/x"))
    assert "cannot access /sd/DJI_0001.JPG" in _cannot_write(OSError(errno.EACCES, "Permission denied", "/sd/DJI_0001.JPG"))
    assert _cannot_write(OSError(errno.ENOENT, "No such file")) is None  # anything else keeps its traceback


@pytest.mark.parametrize("argv, level", [(["report", "/x", "-vv"], 2), (["-v", "report", "/x"], 1),
                                         (["report", "/x"], 0), (["synth", "world", "/x", "-v"], 1)])
def test_verbose_flag_before_or_after_the_command(argv, level) -> None:
    from skysieve.cli import build_parser

    assert build_parser().parse_args(argv).verbose == level

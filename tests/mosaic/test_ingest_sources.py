"""Where a flight comes from: flight ids that keep apart two SD cards with the same file names (and folders
named in Chinese), photos whose folder moved (paths updated, not "already ingested"), and a flight far
outside the area of the workspace CRS (refused). All with real DJI JPEGs (EXIF GPS + XMP)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from ingest_scene import meta_for, shared_ground, survey_shots, write_shot

from skysieve.cli import main
from skysieve.errors import SkysieveError, UsageError
from skysieve.mosaic.ingest import flight_id_for, ingest_flight
from skysieve.mosaic.ortho import cells_with_photos, mosaic_cell
from skysieve.workspace import Workspace


def _flight(folder: Path, dy: float = 0.0, n: int = 5) -> list[Path]:
    """``n`` photos DJI_0001.JPG ... along one line, ``dy`` metres north of the scene's origin (other content)."""
    shots = [replace(s, dy=s.dy + dy) for s in survey_shots(n_lines=1, per_line=n)]
    return [write_shot(shared_ground(), s, folder) for s in shots]


def _images(ws: Workspace) -> list[dict]:
    return ws.gpkg.select("images", order_by="image_id")


@pytest.mark.parametrize(("rel", "expected"), [
    ("card1/DCIM/100MEDIA", "card1"),
    ("card1/DCIM/DJI_202405121030_001", "card1"),
    ("site-b/DCIM/101_PANO", "site-b"),
    ("site-b/DCIM/DJI_202405121030_001_east", "DJI_202405121030_001_east"),  # a mission name: kept
    ("flights/20240512", "20240512"),  # a date is not a DCF folder
    ("fl/东区", "东区"),
    ("survey/001_east", "001_east"),  # a user's own names that only look like DCF folders
    ("survey/240512_a", "240512_a"),
    ("fl/东区 二号/images", "东区_二号"),
])
def test_flight_id_skips_every_generic_folder_and_keeps_unicode(tmp_path: Path, rel: str, expected: str) -> None:
    assert flight_id_for(tmp_path / rel) == expected


def test_flight_id_of_a_path_with_only_generic_folders_is_a_hash() -> None:
    fid = flight_id_for(Path("/DCIM/100MEDIA"))
    assert fid.startswith("flight-") and len(fid) == len("flight-") + 8
    assert flight_id_for(Path("/DCIM/101MEDIA")) != fid


def test_two_sd_cards_with_the_same_file_names_become_two_flights(tmp_path: Path) -> None:
    card1, card2 = tmp_path / "card1/DCIM/100MEDIA", tmp_path / "card2/DCIM/100MEDIA"
    _flight(card1)
    _flight(card2, dy=30.0)
    ws = Workspace.create(tmp_path / "ws")
    r1, r2 = ingest_flight(ws, card1), ingest_flight(ws, card2)
    assert (r1.flight_id, r1.accepted, r2.flight_id, r2.accepted) == ("card1", 5, "card2", 5)
    rows = _images(ws)
    assert len(rows) == 10 and len({r["sha256"] for r in rows}) == 10
    assert {Path(r["path"]).parent.parent.parent.name for r in rows if r["flight_id"] == "card2"} == {"card2"}
    assert json.loads(r1.manifest.read_text())["source"] == str(card1.resolve())
    assert json.loads(r2.manifest.read_text())["source"] == str(card2.resolve())


def test_a_derived_id_taken_by_another_folder_gets_a_suffix(tmp_path: Path) -> None:
    """Two folders of the same name (``a/f1``, ``b/f1``): the second flight is ``f1-2``, nothing is lost;
    rerunning either folder finds its own flight again."""
    a, b = tmp_path / "a/f1", tmp_path / "b/f1"
    _flight(a)
    _flight(b, dy=30.0)
    ws = Workspace.create(tmp_path / "ws")
    assert ingest_flight(ws, a).flight_id == "f1"
    second = ingest_flight(ws, b)
    assert (second.flight_id, second.accepted) == ("f1-2", 5)
    assert len(_images(ws)) == 10
    again = ingest_flight(ws, b)
    assert (again.flight_id, again.skipped, again.photos) == ("f1-2", 5, 0)
    assert ingest_flight(ws, a).flight_id == "f1"


def test_an_explicit_flight_id_whose_names_clash_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    card1, card2 = tmp_path / "card1/DCIM/100MEDIA", tmp_path / "card2/DCIM/100MEDIA"
    _flight(card1)
    _flight(card2, dy=30.0)
    ws_path = tmp_path / "ws"
    assert main(["init", str(ws_path)]) == 0
    assert main(["ingest", str(ws_path), str(card1), "--flight-id", "DCIM"]) == 0
    capsys.readouterr()
    assert main(["ingest", str(ws_path), str(card2), "--flight-id", "DCIM"]) == 2
    err = capsys.readouterr().err
    assert "DCIM" in err and "DJI_0001.JPG" in err and "--flight-id" in err
    rows = _images(Workspace.open(ws_path))
    assert len(rows) == 5 and all("card1" in r["path"] for r in rows)  # nothing half-written
    # distinct names may join a flight on purpose (one flight on two cards); both folders are recorded
    extra = tmp_path / "card3/DCIM/100MEDIA"
    write_shot(shared_ground(), replace(survey_shots(n_lines=1, per_line=6)[5], name="DJI_0006.JPG"), extra)
    assert main(["ingest", str(ws_path), str(extra), "--flight-id", "DCIM"]) == 0
    manifest = json.loads((ws_path / "flights/DCIM/manifest.json").read_text())
    assert manifest["sources"] == [str(card1.resolve()), str(extra.resolve())] and manifest["accepted"] == 6


def test_a_photo_not_stored_is_not_counted_as_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net behind the clash check (another process taking the image ids meanwhile): rows the
    database kept from before are not counted as this run's accepted photos."""
    import skysieve.mosaic.ingest as ingest_mod

    card1, card2 = tmp_path / "card1/DCIM/100MEDIA", tmp_path / "card2/DCIM/100MEDIA"
    _flight(card1)
    _flight(card2, dy=30.0)
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, card1, flight_id="f")
    monkeypatch.setattr(ingest_mod, "_name_clash", lambda *a: None)
    result = ingest_flight(ws, card2, flight_id="f")
    assert (result.accepted, result.rejected) == (0, {"duplicate": 5})
    assert all("card1" in r["path"] for r in _images(ws))


def test_chinese_folder_names_stay_apart(tmp_path: Path) -> None:
    east, west = tmp_path / "fl/东区", tmp_path / "fl/西区"
    _flight(east)
    _flight(west, dy=30.0)
    ws = Workspace.create(tmp_path / "ws")
    assert ingest_flight(ws, east).flight_id == "东区"
    assert ingest_flight(ws, west).flight_id == "西区"
    rows = _images(ws)
    assert sorted({r["flight_id"] for r in rows}) == ["东区", "西区"] and len(rows) == 10
    assert (ws.root / "flights/西区/manifest.json").is_file()


def test_moved_photos_get_their_new_paths_and_the_mosaic_reads_them(tmp_path: Path) -> None:
    old = tmp_path / "sdcard/f1"
    shots = survey_shots()
    for s in shots:
        write_shot(shared_ground(), s, old)
    ws = Workspace.create(tmp_path / "ws")
    first = ingest_flight(ws, old)
    assert first.accepted == 8
    cell = cells_with_photos(ws)[0]
    new = tmp_path / "moved/f1"
    new.parent.mkdir()
    shutil.move(old, new)
    with pytest.raises(SkysieveError):
        mosaic_cell(ws.root, cell)
    result = ingest_flight(ws, new)
    assert (result.flight_id, result.moved, result.skipped, result.photos, result.accepted) == ("f1", 8, 0, 0, 0)
    assert f"8 photos moved from {old.resolve()} to {new.resolve()}" in result.text()
    rows = _images(ws)
    assert len(rows) == 8 and all(Path(r["path"]).parent == new.resolve() and Path(r["path"]).is_file() for r in rows)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["source"] == str(new.resolve()) and manifest["sources"] == [str(new.resolve())]
    assert manifest["accepted"] == 8 and all(Path(e["path"]).is_file() for e in manifest["images"])
    assert mosaic_cell(ws.root, cell)["images_used"]
    again = ingest_flight(ws, new)
    assert (again.moved, again.skipped) == (0, 8)


def test_a_moved_flight_under_a_generic_path_keeps_its_flight(tmp_path: Path) -> None:
    """Moved into ``archive/0512/DCIM/100MEDIA`` (derived id ``0512``), with a copy of one photo beside it and
    one new photo: the stored flight is found by content, the copy is a duplicate, the new photo joins."""
    old = tmp_path / "sdcard/f1"
    paths = _flight(old)
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, old)
    new = tmp_path / "archive/0512/DCIM/100MEDIA"
    new.parent.mkdir(parents=True)
    shutil.move(old, new)
    shutil.copyfile(new / paths[1].name, new / "copy_of_DJI_0002.JPG")
    write_shot(shared_ground(), replace(survey_shots(n_lines=1, per_line=6)[5], name="DJI_0006.JPG"), new)
    result = ingest_flight(ws, new)
    assert (result.flight_id, result.moved, result.accepted, result.rejected) == ("f1", 5, 1, {"duplicate": 1})
    rows = _images(ws)
    assert len(rows) == 6 and all(Path(r["path"]).parent == new.resolve() for r in rows)


def test_a_copy_elsewhere_of_a_stored_photo_stays_a_duplicate(tmp_path: Path) -> None:
    """Same content, another flight id, the stored file still there: a duplicate, the stored path kept."""
    src = tmp_path / "sdcard/f1"
    paths = _flight(src)
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, src)
    other = tmp_path / "other/f9"
    other.mkdir(parents=True)
    shutil.copyfile(paths[0], other / "X.JPG")
    result = ingest_flight(ws, other, flight_id="f9")
    assert (result.moved, result.rejected) == (0, {"duplicate": 1})
    assert all(Path(r["path"]).parent == src.resolve() for r in _images(ws))


def test_a_copy_under_the_same_flight_id_is_a_duplicate_not_a_move(tmp_path: Path) -> None:
    """The card copied to a USB stick, the original still on disk: ingesting the copy (same folder name, so
    the same flight and image ids) changes no stored path; had it, removing the stick would break the mosaic."""
    src = tmp_path / "sdcard/f1"
    _flight(src)
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, src)
    shutil.copytree(src, tmp_path / "usb/f1")
    result = ingest_flight(ws, tmp_path / "usb/f1")
    assert result.moved == 0 and result.accepted == 0
    assert all(Path(r["path"]).parent == src.resolve() for r in _images(ws))


def test_another_card_mounted_at_the_same_path_is_another_flight(tmp_path: Path) -> None:
    """Card A read at /Volumes/Untitled/DCIM/100MEDIA, then card B (other photos, other place) at the same
    path: B is a new flight, not more photos of A (they would share one adjustment and take-off altitude)."""
    mount = tmp_path / "Untitled/DCIM/100MEDIA"
    _flight(mount)
    ws = Workspace.create(tmp_path / "ws")
    first = ingest_flight(ws, mount)
    shutil.rmtree(mount)
    _flight(mount, dy=120.0, n=4)
    for p in mount.iterdir():
        p.rename(p.with_name(p.name.replace("DJI_", "DJI_1")))
    second = ingest_flight(ws, mount)
    assert first.flight_id == "Untitled" and second.flight_id == "Untitled-2" and second.accepted == 4
    # more photos added to the folder of a flight whose files are still there join it
    _flight(tmp_path / "more", dy=60.0, n=2)
    for p in (tmp_path / "more").iterdir():
        shutil.copyfile(p, mount / p.name.replace("DJI_", "DJI_2"))
    assert ingest_flight(ws, mount).flight_id == "Untitled-2"


def _far_flight(folder: Path, lon0: float, lat0: float) -> None:
    for s in survey_shots(n_lines=1, per_line=4):
        m = meta_for(s)
        write_shot(shared_ground(), s, folder, meta=replace(m, lon=lon0 + (m.lon - 114.3), lat=lat0 + (m.lat - 30.6)))


def test_a_flight_outside_the_workspace_crs_area_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    minnesota = tmp_path / "mn-0601"
    _far_flight(minnesota, -93.6, 45.2)
    ws_path = tmp_path / "ws"
    assert main(["init", str(ws_path), "--crs", "EPSG:4547"]) == 0
    capsys.readouterr()
    assert main(["ingest", str(ws_path), str(minnesota)]) == 2
    err = capsys.readouterr().err
    assert "EPSG:4547" in err and "outside" in err and "new workspace" in err
    ws = Workspace.open(ws_path)
    assert not ws.gpkg.has_layer("images") or not _images(ws)
    with pytest.raises(UsageError):
        ingest_flight(ws, minnesota)
    # the same flight in a workspace of its own is placed in its UTM zone
    assert main(["init", str(tmp_path / "ws-mn")]) == 0
    assert main(["ingest", str(tmp_path / "ws-mn"), str(minnesota)]) == 0
    assert Workspace.open(tmp_path / "ws-mn").crs.to_epsg() == 32615


def test_a_single_stray_fix_far_away_is_rejected_and_the_flight_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "f1"
    shots = survey_shots()
    for s in shots[:-1]:
        write_shot(shared_ground(), s, folder)
    stray = shots[-1]
    write_shot(shared_ground(), stray, folder, meta=replace(meta_for(stray), lon=-93.6, lat=45.2))
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    assert (result.accepted, result.rejected) == (7, {"far_away": 1})
    row = ws.gpkg.select("images", "image_id=?", (f"f1/{stray.name}",))[0]
    assert row["status"] == "rejected" and row["reason"].startswith("far_away:") and row["x"] is None

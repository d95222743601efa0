"""Ingest of a generated flight with every kind of bad photo: each is rejected with its reason, the rest go on;
reruns add nothing; a kill mid-ingest leaves a valid workspace that the rerun completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from ingest_scene import (
    GROUND_ASL_M,
    meta_for,
    render,
    shared_ground,
    survey_shots,
    top_edge_heading_deg,
    write_shot,
)

from skysieve.camera import camera_pose_from_row, footprint
from skysieve.cli import main
from skysieve.mosaic.ingest import ingest_flight
from skysieve.workspace import Workspace

EXPECTED_REJECTIONS = {
    "DJI_0101.JPG": "unreadable",  # truncated
    "DJI_0102.JPG": "not_image",  # a text file named like a photo
    "DJI_0103.JPG": "no_gps",
    "DJI_0104.JPG": "oblique",  # gimbal pitch -60: 30 degrees off nadir
    "DJI_0105.JPG": "dark",
    "DJI_0106.JPG": "washed_out",
    "DJI_0107.JPG": "blurred",
    "copy_of_DJI_0003.JPG": "duplicate",
}


def make_bad_flight(folder: Path) -> list[Path]:
    """Eight good photos in two lines, one without XMP, one mostly over water, and one photo of each bad kind."""
    g = shared_ground()
    shots = survey_shots()
    paths = [write_shot(g, s, folder) for s in shots]
    base = shots[1]
    rgb = render(g, base.cam, base.pose)
    data = paths[0].read_bytes()
    (folder / "DJI_0101.JPG").write_bytes(data[: len(data) * 6 // 10])
    (folder / "DJI_0102.JPG").write_text("DJI flight record, not a photo\n")
    write_shot(g, replace(base, name="DJI_0103.JPG"), folder, meta=replace(meta_for(base), lon=None, lat=None))
    write_shot(g, replace(base, name="DJI_0104.JPG", pitch_deg=-60.0), folder)
    write_shot(g, replace(base, name="DJI_0105.JPG"), folder, pixels=(rgb * 0.06).astype(np.uint8))
    write_shot(g, replace(base, name="DJI_0106.JPG"), folder, pixels=(236 + rgb * 0.07).astype(np.uint8))
    write_shot(g, replace(base, name="DJI_0107.JPG"), folder, pixels=cv2.GaussianBlur(rgb, (0, 0), 5))
    shutil.copyfile(paths[2], folder / "copy_of_DJI_0003.JPG")
    write_shot(g, replace(shots[5], name="DJI_0109.JPG", xmp=False), folder)  # accepted, with a warning
    water = render(g, shots[6].cam, shots[6].pose)  # 60 % calm water: featureless but not blurred
    water[:, : water.shape[1] * 6 // 10] = (70, 90, 110)
    write_shot(g, replace(shots[6], name="DJI_0110.JPG"), folder, pixels=water)
    (folder / "FLY001.SRT").write_text("1\n00:00:00,000 --> 00:00:01,000\n")  # not photo-named: ignored
    return paths


@pytest.fixture(scope="module")
def bad_flight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flights") / "county-a-0512"
    make_bad_flight(folder)
    return folder


def test_each_bad_photo_is_rejected_with_its_reason(tmp_path: Path, bad_flight: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, bad_flight)
    assert result.flight_id == "county-a-0512"
    assert result.accepted == 10 and result.ignored == 1
    assert result.rejected == {code: 1 for code in EXPECTED_REJECTIONS.values()}
    rows = {Path(r["path"]).name: r for r in ws.gpkg.select("images")}
    assert "copy_of_DJI_0003.JPG" not in rows  # a duplicate adds no row: each photo is stored once
    for name, code in EXPECTED_REJECTIONS.items():
        if code != "duplicate":
            assert rows[name]["status"] == "rejected" and rows[name]["reason"].startswith(code + ":"), name
    manifest = json.loads(result.manifest.read_text())
    dup = [e for e in manifest["images"] if e["image_id"].endswith("copy_of_DJI_0003.JPG")]
    assert dup[0]["duplicate_of"] == "county-a-0512/DJI_0003.JPG"
    assert rows["DJI_0110.JPG"]["status"] == "accepted"
    assert manifest["accepted"] == 10 and sum(manifest["rejected"].values()) == 8
    # missing XMP is a warning: height from GPS altitude calibrated on the flight's XMP photos
    noxmp = rows["DJI_0109.JPG"]
    assert noxmp["status"] == "accepted" and "no DJI XMP" in noxmp["reason"]
    assert noxmp["altitude_source"] == "gps_relative" and noxmp["altitude_m"] == pytest.approx(60.0, abs=0.05)
    assert manifest["altitude"]["takeoff_altitude_m"] == pytest.approx(GROUND_ASL_M, abs=0.05)
    assert result.coverage_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accepted_rows_carry_everything_the_mosaic_needs(tmp_path: Path, bad_flight: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, bad_flight)
    accepted = ws.gpkg.select("images", "status='accepted'")
    for r in accepted:
        # reason: warnings only; yaw_seen_deg: set by the mosaic where the pixels contradict the recorded yaw
        empty = [k for k, v in r.items() if v is None and k not in ("reason", "yaw_seen_deg")]
        assert not empty, (r["image_id"], empty)
        camera, pose = camera_pose_from_row(r)
        assert footprint(camera, pose).equals_exact(r["geometry"], 1e-6)
        # yaw from XMP (or travel) honoured: the image's top edge runs yaw + 90 degrees
        assert (top_edge_heading_deg(r["geometry"]) - (r["yaw_deg"] + 90) + 180) % 360 - 180 == pytest.approx(0, abs=0.01)
        assert abs(abs(r["yaw_deg"]) - 90) < 0.1  # lines flown east and west, image top forward
        assert r["gsd_m"] == pytest.approx(60 * 6.17 / (3.61 * 1200), rel=1e-3)
        cells = r["cells"].split(",")
        assert cells and all(ws.cells("cell_id=?", (c,)) for c in cells)
    # positions back in WGS 84 match the EXIF GPS
    r = accepted[0]
    lon, lat = ws.to_lonlat(r["x"], r["y"])
    assert (lon, lat) == pytest.approx((r["lon"], r["lat"]), abs=1e-7)


def test_rerun_and_reingest_add_nothing(tmp_path: Path, bad_flight: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ingest_flight(ws, bad_flight)
    before = ws.gpkg.select("images", order_by="image_id")
    again = ingest_flight(ws, bad_flight)
    assert again.skipped == 17 and again.accepted == 0 and again.rejected == {"duplicate": 1}
    other = ingest_flight(ws, bad_flight, flight_id="same-photos-other-id")
    assert other.accepted == 0 and other.rejected == {"duplicate": 18}
    after = ws.gpkg.select("images", order_by="image_id")
    assert [(r["image_id"], r["status"], r["reason"]) for r in after] == \
        [(r["image_id"], r["status"], r["reason"]) for r in before]


def test_cli_prints_summary_and_json(tmp_path: Path, bad_flight: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["init", str(tmp_path / "ws")]) == 0
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "ws"), str(bad_flight), "--flight-id", "f1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accepted"] == 10 and summary["rejected"]["blurred"] == 1 and summary["mean_gsd_m"] > 0
    assert set(summary["coverage"]) and all(0 < v <= 1 for v in summary["coverage"].values())
    assert main(["ingest", str(tmp_path / "ws"), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    one = next(p for p in sorted(bad_flight.iterdir()) if p.suffix.upper() == ".JPG")
    assert main(["ingest", str(tmp_path / "ws"), str(one)]) == 2  # a photo, not its folder
    err = capsys.readouterr().err
    assert "is a file; ingest takes the flight's folder" in err and str(bad_flight) in err


_KILLED_CHILD = """
import os, signal, sys
from skysieve.gpkg import GeoPackage
from skysieve.cli import main

original, calls = GeoPackage.insert, [0]

def rows_then_die(rows):
    yield rows[0]
    os.kill(os.getpid(), signal.SIGKILL)  # inside the transaction: after one INSERT, before COMMIT

def insert(self, layer, rows, **kw):
    if layer == "images":
        calls[0] += 1
        if calls[0] == 3:
            rows = rows_then_die(list(rows))
    return original(self, layer, rows, **kw)

GeoPackage.insert = insert
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_mid_ingest_leaves_a_valid_workspace_that_resumes(tmp_path: Path, bad_flight: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.save_section("ingest", {"commit_every": 2})
    # a real ``skysieve ingest`` process, SIGKILLed while writing its third batch of rows
    proc = subprocess.run([sys.executable, "-c", _KILLED_CHILD, "ingest", str(ws.root), str(bad_flight)],
                          env={**os.environ, "SKYSIEVE_PROGRESS": "0"}, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(ws.root / "survey.gpkg")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute('SELECT COUNT(*) FROM "images"').fetchone()[0] == 4  # two whole batches, no half one
    con.close()
    assert not (ws.flight_dir("county-a-0512") / "manifest.json").exists()  # written last, atomically
    ws = Workspace.open(ws.root)
    result = ingest_flight(ws, bad_flight)
    assert result.skipped == 4
    rows = ws.gpkg.select("images")
    assert len(rows) == 17 and sum(r["status"] == "accepted" for r in rows) == 10
    assert {Path(r["path"]).name: r["reason"].split(":")[0] for r in rows if r["status"] == "rejected"} == \
        {k: v for k, v in EXPECTED_REJECTIONS.items() if v != "duplicate"}
    assert json.loads(result.manifest.read_text())["accepted"] == 10


def test_rejections_hold_after_ultralytics_patched_pillow(tmp_path: Path, bad_flight: Path) -> None:
    """Importing ultralytics replaces PIL.Image.open with a version that raises ImportError (no HEIF plugin)
    on files Pillow cannot identify; a text file must still be 'not_image', not an unexpected error."""
    import ultralytics.utils.patches  # noqa: F401 - applies the patch, as the detect stage does

    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, bad_flight)
    assert result.rejected == {code: 1 for code in EXPECTED_REJECTIONS.values()}

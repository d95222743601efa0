"""``skysieve demo``, the README's first command: the whole chain on a generated survey, then a rerun."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pyogrio
import pytest
import rasterio

from skysieve.cli import main
from skysieve.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "survey"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["demo", str(root), "--json"]) == 0
    return root, json.loads(out.getvalue())


def test_demo_runs_every_stage(demo: tuple[Path, dict]) -> None:
    root, summary = demo
    ws = Workspace.open(root)
    counts = {r["status"]: r["n"] for r in (dict(x) for x in ws.gpkg.connection().execute(
        "SELECT status, COUNT(*) AS n FROM images GROUP BY status"))}
    assert counts.get("accepted", 0) >= 20
    orthos = sorted(root.glob("cells/*/ortho.tif"))
    assert orthos, "no cell mosaic was built"
    # every cell's photos placed near their GPS fixes (1.5 m of noise): three pairs matched on repeated
    # structures once pulled the terrain adjustment 61 m from GPS on average (1210 m at most) and the plane's
    # 8.5 m (81 m), and the detections 10-20 m from the truth
    for path in orthos:
        report = json.loads(path.with_name("ortho.json").read_text())
        assert report["mean_shift_from_gps_m"] < 3.0 and report["max_shift_from_gps_m"] < 8.0, report
        assert report["tie_outliers"] < 0.05 * report["tie_points"], report
        assert report["adjust"] == "terrain" or report["adjust"].startswith("plane"), report["adjust"]
        if report["adjust"] == "terrain":
            assert -20 < report["terrain_height_min_m"] <= report["terrain_height_max_m"] < 20, report
    with rasterio.open(orthos[0]) as src:
        assert src.crs == ws.crs and src.overviews(1)
    assert ws.gpkg.count("sites") >= 1
    assert ws.gpkg.count("detections") >= 1
    # the stand-in reviewer decided every flag and says what it is in the audit trail
    assert ws.gpkg.count("detections", "review_status='pending'") == 0
    reviewers = {r[0] for r in ws.gpkg.connection().execute("SELECT DISTINCT reviewer FROM decisions")}
    assert any("stand-in" in (r or "") for r in reviewers)
    exports = root / "exports"
    for name in ("suspects.geojson", "suspects.kml", "suspects.kmz", "suspects.gpx", "suspects.csv", "suspects.gpkg"):
        assert (exports / name).is_file(), name
    # the JSON summary says what the workspace holds
    assert summary["counts"]["flags"] == ws.gpkg.count("detections")
    assert summary["counts"]["flags_confirmed"] >= 1  # the mosaic puts the flags on the truth's objects
    assert summary["counts"]["suspects"] == ws.gpkg.count("suspects")
    assert summary["counts"]["cells_mosaicked"] == len(orthos)
    assert {n for n, _ in pyogrio.list_layers(root / "survey.gpkg")} >= {"cells", "sites", "images", "detections",
                                                                          "suspects"}


def test_demo_rerun_resumes_without_duplicates(demo: tuple[Path, dict], capsys: pytest.CaptureFixture) -> None:
    root, _ = demo
    ws = Workspace.open(root)
    before = {layer: ws.gpkg.count(layer) for layer in ("images", "cells", "sites", "suspects")}
    assert main(["demo", str(root)]) == 0
    out = capsys.readouterr().out
    assert "skysieve review" in out and "suspects" in out
    after = {layer: ws.gpkg.count(layer) for layer in ("images", "cells", "sites", "suspects")}
    assert after == before

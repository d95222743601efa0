"""Per-class operating thresholds: read from the model, set by the user, calibrated on validation data."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from skysieve.detect.pipeline import detect_cells
from skysieve.detect.thresholds import GRID, calibrate, class_thresholds
from skysieve.errors import DetectionError, ModelError
from skysieve.models import DEFAULT_MODEL, MODELS_DIR, resolve_model
from skysieve.schema import DETECTIONS


def test_thresholds_come_from_the_model_unless_the_user_sets_one():
    meta = resolve_model().meta
    plain = replace(meta, extra={"conf": 0.4})
    assert class_thresholds(plain).tolist() == [0.4, 0.4, 0.4]
    per = replace(meta, extra={"conf": 0.4, "class_conf": {"tank": 0.65, "chimney": 0.5}})
    assert class_thresholds(per).tolist() == [0.65, 0.5, 0.4]  # a class it does not name keeps conf
    assert class_thresholds(per, 0.3).tolist() == [0.3, 0.3, 0.3]  # --conf overrides every class
    assert class_thresholds(replace(meta, extra={})).tolist() == [0.25, 0.25, 0.25]
    with pytest.raises(ModelError, match="car"):
        class_thresholds(replace(meta, extra={"class_conf": {"car": 0.5}}))
    with pytest.raises(ModelError, match="between 0 and 1"):
        class_thresholds(meta, 1.5)


def test_calibration_picks_the_lowest_threshold_that_reaches_the_precision():
    """Tanks: 10 true, found with scores 0.5-0.95; false tanks score up to 0.54: at 0.525, 9 of 10 tanks
    are kept (recall 0.9) with one false one (precision 0.9); at 0.5 precision is 10/13. Chimneys: the
    false ones outscore the true ones, nothing reaches the target, so the best-F1 threshold is given and
    marked as not met."""
    tank_tp = np.linspace(0.5, 0.95, 10)
    tank_fp = np.array([0.3, 0.35, 0.4, 0.45, 0.5, 0.52, 0.54])
    chim_tp, chim_fp = np.array([0.3, 0.3]), np.array([0.9, 0.9, 0.9])
    score = np.concatenate([tank_tp, tank_fp, chim_tp, chim_fp])
    matched = np.concatenate([np.ones(10), np.zeros(7), np.ones(2), np.zeros(3)]).astype(bool)
    cls = np.array([0] * 17 + [1] * 5)
    out = calibrate(matched, score, cls, [10, 2, 0], ("tank", "chimney", "drum_stockpile"))
    assert out["tank"] == {"conf": 0.525, "precision": 0.9, "recall": 0.9, "met": True}
    assert not out["chimney"]["met"] and out["chimney"]["conf"] in GRID
    assert out["drum_stockpile"]["recall"] == 0.0 and not out["drum_stockpile"]["met"]


def test_detect_applies_the_model_s_per_class_thresholds(tmp_path, workspace):
    """The same mosaic through a copy of the shipped model whose metadata sets chimney's threshold
    above any score: no chimney is stored, tanks and drum stockpiles are as with the plain threshold."""
    for suffix in (".pt", ".onnx", ".json", ".md"):
        shutil.copy(MODELS_DIR / f"{DEFAULT_MODEL}{suffix}", tmp_path / f"strict{suffix}")
    meta = json.loads((tmp_path / "strict.json").read_text())
    base = float(meta.get("conf", 0.25))
    meta["class_conf"] = {"tank": base, "chimney": 0.999, "drum_stockpile": base}
    (tmp_path / "strict.json").write_text(json.dumps(meta))
    plain = detect_cells(workspace, model=str(tmp_path / "strict.pt"), conf=base)
    assert plain["conf"] == {"tank": base, "chimney": base, "drum_stockpile": base}
    strict = detect_cells(workspace, model=str(tmp_path / "strict.pt"))
    assert strict["conf"]["chimney"] == 0.999
    assert strict["by_class"]["chimney"] == 0 and plain["by_class"]["chimney"] > 0
    for cls in ("tank", "drum_stockpile"):
        assert strict["by_class"][cls] == plain["by_class"][cls]
    assert workspace.gpkg.count(DETECTIONS.name, "class='chimney'") == 0


def test_class_conf_cuts_each_class_at_its_threshold(mosaic):
    from skysieve.detect.runtime import load_detector
    from skysieve.detect.sliced import SliceSettings, detect_raster

    det = load_detector()
    found = detect_raster(mosaic.path, det, SliceSettings(conf=0.25))
    assert len(found) > 3
    thr = (0.25, 0.999, 0.5)
    kept = detect_raster(mosaic.path, det, SliceSettings(conf=0.25, class_conf=thr))
    assert len(kept.polygons) == len(kept.score) == len(kept.cls) == len(kept.xyxy_px)
    assert (kept.score >= np.array(thr)[kept.cls]).all() and 1 not in kept.cls.tolist()
    # the same boxes as cutting by hand, except drum piles may be grouped (never more of them)
    for c, t in enumerate(thr):
        by_hand = int(((found.cls == c) & (found.score >= t)).sum())
        assert (int((kept.cls == c).sum()) == by_hand) if c != 2 else (int((kept.cls == c).sum()) <= by_hand)
    with pytest.raises(DetectionError, match="2 class thresholds for a model of 3"):
        detect_raster(mosaic.path, det, SliceSettings(conf=0.25, class_conf=(0.3, 0.3)))

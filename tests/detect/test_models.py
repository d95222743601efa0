"""Resolving model names and paths, and the errors for missing, corrupt or foreign models."""

from __future__ import annotations

import shutil

import pytest

from skysieve.detect.runtime import load_detector
from skysieve.errors import ModelError
from skysieve.models import DEFAULT_MODEL, MODELS_DIR, available_models, resolve_model


def test_default_model_is_shipped_with_metadata_and_current_onnx():
    ref = resolve_model()
    assert ref.name == DEFAULT_MODEL and ref.pt is not None and ref.has_meta
    assert ref.meta.classes == ("tank", "chimney", "drum_stockpile")
    assert 0.01 <= ref.meta.gsd_m <= 0.1 and ref.meta.imgsz % 32 == 0
    assert ref.onnx is not None and ref.onnx_current
    assert (MODELS_DIR / f"{DEFAULT_MODEL}.md").exists()
    assert DEFAULT_MODEL in available_models()


def test_unknown_name_lists_the_shipped_models():
    with pytest.raises(ModelError, match="no model named 'nope'") as e:
        resolve_model("nope")
    assert DEFAULT_MODEL in str(e.value)


def test_missing_path_and_wrong_suffix(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(tmp_path / "gone.pt")
    txt = tmp_path / "weights.txt"
    txt.write_text("x")
    with pytest.raises(ModelError, match="not a model file"):
        resolve_model(txt)


def test_corrupt_weights_give_a_clear_error(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x80\x02this is not a checkpoint" * 10)
    with pytest.raises(ModelError, match="cannot load the weights") as e:
        load_detector(bad, backend="torch")
    assert "corrupt" in str(e.value)
    (tmp_path / "onnx").mkdir()
    bad_onnx = tmp_path / "onnx" / "broken.onnx"
    bad_onnx.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read the ONNX model"):
        load_detector(bad_onnx)


def test_truncated_copy_of_the_shipped_model_is_refused(tmp_path):
    src = resolve_model().pt
    cut = tmp_path / "cut.pt"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(ModelError, match="cannot load"):
        load_detector(cut, backend="torch")


def test_model_with_other_classes_is_refused(tmp_path):
    import torch
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    m.names = {0: "car", 1: "person"}
    path = tmp_path / "coco-ish.pt"
    torch.save({"model": m.half(), "train_args": {"imgsz": 320}}, path)
    with pytest.raises(ModelError, match=r"classes \['car', 'person'\]"):
        load_detector(path, backend="torch")


def test_stale_onnx_is_ignored_for_the_pt(tmp_path, caplog):
    ref = resolve_model()
    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(MODELS_DIR / f"{DEFAULT_MODEL}{suffix}", tmp_path / f"m{suffix}")
    with open(tmp_path / "m.pt", "ab") as f:  # the .pt changed after the export (retrained)
        f.write(b"\0")
    copy = resolve_model(tmp_path / "m.pt")
    assert copy.onnx is not None and not copy.onnx_current
    assert ref.onnx_current

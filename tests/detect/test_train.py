"""A real (tiny) training run through ``skysieve train``, shipped and loaded back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skysieve.cli import main
from skysieve.detect.runtime import load_detector
from skysieve.errors import DatasetError
from skysieve.models import resolve_model


@pytest.mark.slow
def test_tiny_training_run_ships_a_loadable_model_with_card(tmp_path, capsys):
    from skysieve.datasets.yolo import build_dataset

    data = build_dataset(tmp_path / "ds", 8, imgsz=64, gsd_range=(0.08, 0.1), seed=5, workers=1)
    models = tmp_path / "models"
    rc = main(["train", "--data", str(data), "--gsd", "0.09", "--imgsz", "64", "--epochs", "1", "--batch", "4",
               "--workers", "0", "--project", str(tmp_path / "runs"), "--name", "tiny", "--ship-as", "tiny",
               "--models-dir", str(models), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 1
    ref = resolve_model(models / "tiny.pt")
    assert ref.has_meta and ref.meta.gsd_m == 0.09 and ref.meta.imgsz == 64 and ref.onnx_current
    assert "0.090 m/px" in ref.card.read_text()
    det = load_detector(ref)
    boxes = det.predict(np.zeros((2, 64, 64, 3), np.uint8), conf=0.5)
    assert len(boxes) == 2
    # the next session extends it from the shipped weights
    rc = main(["train", "--data", str(data), "--gsd", "0.09", "--imgsz", "64", "--epochs", "1", "--batch", "4",
               "--workers", "0", "--project", str(tmp_path / "runs"), "--name", "tiny2",
               "--resume-from", str(models / "tiny.pt")])
    assert rc == 0


@pytest.mark.slow
def test_extending_a_model_starts_from_its_weights(tmp_path):
    """``resume_from`` must start from those weights, not from a fresh network of the same shape
    (Ultralytics drops a checkpoint's weights when told ``pretrained=False``, which v1 -> v2 suffered).
    At learning rate 0 the extended model's convolutions are the starting ones, bit for bit."""
    import torch

    from skysieve.datasets.yolo import build_dataset
    from skysieve.detect.train import TrainRecipe, train

    data = build_dataset(tmp_path / "ds", 8, imgsz=64, gsd_range=(0.08, 0.1), seed=5, workers=1)
    frozen = {"optimizer": "AdamW", "lr0": 0.0, "warmup_epochs": 0.0, "warmup_bias_lr": 0.0, "mosaic": 0.0}
    first = train(TrainRecipe(data=data, gsd_m=0.09, epochs=1, imgsz=64, batch=4, workers=0, seed=1,
                              project=tmp_path / "runs", name="a", augment={"optimizer": "AdamW", "lr0": 0.01}))
    again = train(TrainRecipe(data=data, gsd_m=0.09, epochs=1, imgsz=64, batch=4, workers=0, seed=2,
                              project=tmp_path / "runs", name="b", augment=frozen, resume_from=first.last))

    def convs(pt):
        model = torch.load(pt, weights_only=False)
        model = model.get("ema") or model["model"]
        return {k: v.float() for k, v in model.state_dict().items() if k.endswith("conv.weight")}

    a, b = convs(first.last), convs(again.last)
    assert a.keys() == b.keys() and len(a) > 50
    assert all(torch.equal(a[k], b[k]) for k in a), "the extended run did not start from the given weights"


def test_training_data_with_other_classes_is_refused(tmp_path):
    from skysieve.detect.train import TrainRecipe, train

    yaml = tmp_path / "data.yaml"
    yaml.write_text(f"path: {tmp_path}\ntrain: images\nval: images\nnames:\n  0: car\n")
    with pytest.raises(DatasetError, match="skysieve trains"):
        train(TrainRecipe(data=yaml, gsd_m=0.05))
    with pytest.raises(DatasetError, match="not found"):
        train(TrainRecipe(data=tmp_path / "missing.yaml", gsd_m=0.05))


@pytest.mark.parametrize("extra, needle", [
    (["--epochs", "0"], "epochs and batch must be 1 or more"),
    (["--hours", "-1"], "hours more than 0"),
    (["--batch", "0"], "epochs and batch must be 1 or more"),
    (["--imgsz", "100"], "multiple of 32"),
    (["--ship-as", "../evil"], "not a model name"),
    (["--ship-as", "skysieve-det-v6"], "already exists"),  # the shipped default: never replaced by accident
])
def test_train_refuses_bad_arguments_before_training(tmp_path, capsys, extra, needle):
    """Each of these failed only after training (or replaced the shipped model): now exit 2 at once."""
    data = tmp_path / "ds"
    data.mkdir()
    (data / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: {0: tank}\n")
    assert main(["train", "--data", str(data), *extra]) == 2  # a folder with a data.yaml is taken, as evaluate does
    assert needle in capsys.readouterr().err


def test_train_refuses_a_missing_data_yaml_and_ship_only_of_nothing(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing")]) == 2
    assert "no data.yaml there" in capsys.readouterr().err
    assert main(["train", "--ship-only", str(tmp_path / "missing.pt"), "--ship-as", "x",
                 "--models-dir", str(tmp_path / "m")]) == 2
    assert "no such weights file" in capsys.readouterr().err

"""Training a skysieve detector with Ultralytics, offline and reproducibly, and shipping it.

:func:`train` wraps ``YOLO(...).train`` with settings that are safe on a machine without internet
(model built from ``yolo11n.yaml``, no pretrained download, no plots that fetch a font, no AMP check
that fetches weights) and with augmentations that suit nadir imagery at a fixed ground sample distance
(both flips, mild scale jitter only: inference resamples every mosaic to the model's GSD). It can
start from existing weights (``resume_from``: fine-tune or extend the shipped model) or continue an
interrupted run (``resume``). :func:`ship` copies the best weights to a model folder with the
sidecar metadata, an ONNX export for the CPU runtimes, and the model card.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skysieve.errors import DatasetError, ModelError, UsageError
from skysieve.models import CLASSES, ModelMeta, sha256_file, write_meta

__all__ = ["TrainRecipe", "TrainResult", "train", "export_onnx", "ship"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRecipe:
    """One training run. ``gsd_m`` is the ground sample distance (m/px) of the training images: it is
    recorded with the model and inference resamples mosaics to it. ``hours`` (if set) bounds the run
    by wall time (Ultralytics then fits the epochs into it)."""

    data: Path  # data.yaml of a YOLO dataset (e.g. from `skysieve synth dataset`)
    gsd_m: float
    epochs: int = 60
    hours: float | None = None
    imgsz: int = 512
    batch: int = 16
    workers: int = 2
    model_yaml: str = "yolo11n.yaml"
    resume_from: Path | None = None  # start from these weights (fine-tune / extend)
    resume: bool = False  # continue the interrupted run whose last.pt is ``resume_from``
    project: Path = Path("runs/train")
    name: str = "skysieve-det"
    seed: int = 0
    device: str = "cpu"
    patience: int = 100
    augment: dict[str, Any] = field(default_factory=lambda: {
        "fliplr": 0.5, "flipud": 0.5, "degrees": 0.0, "scale": 0.2, "translate": 0.1, "mosaic": 1.0,
        "mixup": 0.0, "hsv_h": 0.02, "hsv_s": 0.5, "hsv_v": 0.35, "close_mosaic": 1, "warmup_epochs": 1.0,
        "cache": "ram",
    })


@dataclass(frozen=True)
class TrainResult:
    best: Path
    last: Path
    run_dir: Path
    epochs_done: int
    seconds: float
    metrics: dict[str, float]


@contextlib.contextmanager
def _stdout_to_stderr():
    """Ultralytics logs to stdout; keep stdout for the command's own output (``--json``)."""
    from ultralytics.utils import LOGGER

    swapped = []
    for h in LOGGER.handlers:
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stdout:
            swapped.append(h)
            h.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for h in swapped:
            h.setStream(sys.stdout)


def _check_data(data: Path) -> list[str]:
    import yaml

    if not data.exists():
        raise DatasetError("training data not found", path=data,
                           hint="build a dataset with `skysieve synth dataset OUT_DIR` and pass its data.yaml")
    cfg = yaml.safe_load(data.read_text(encoding="utf-8"))
    names = cfg.get("names")
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names or [])
    if tuple(names) != CLASSES:
        raise DatasetError(f"the dataset's classes are {names}, skysieve trains {list(CLASSES)}", path=data)
    return names


def train(recipe: TrainRecipe) -> TrainResult:
    """Run the recipe (minutes to hours); returns the best/last weights and the final validation metrics."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    data = Path(recipe.data).resolve()
    _check_data(data)
    if recipe.imgsz % 32:
        raise UsageError(f"imgsz must be a multiple of 32, got {recipe.imgsz}")
    t0 = time.perf_counter()
    with _stdout_to_stderr():
        model = _run(recipe, data)
    trainer = model.trainer
    run_dir = Path(trainer.save_dir)
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    metrics = {k: round(float(v), 4) for k, v in (getattr(trainer, "metrics", None) or {}).items()
               if isinstance(v, (int, float))}
    epochs_done = int(getattr(trainer, "epoch", -1)) + 1
    log.info("trained %d epochs in %.0f s: %s", epochs_done, time.perf_counter() - t0, best)
    return TrainResult(best if best.exists() else last, last, run_dir, epochs_done,
                       round(time.perf_counter() - t0, 1), metrics)


def _run(recipe: TrainRecipe, data: Path):
    from ultralytics import YOLO

    if recipe.resume:
        if recipe.resume_from is None:
            raise UsageError("resume needs the interrupted run's last.pt")
        model = YOLO(str(recipe.resume_from))
        model.train(resume=True)
        return model
    if recipe.resume_from is not None:
        if not Path(recipe.resume_from).exists():
            raise ModelError("weights to start from not found", path=recipe.resume_from)
        model = YOLO(str(recipe.resume_from))
    else:
        model = YOLO(recipe.model_yaml)
    args = dict(data=str(data), epochs=recipe.epochs, imgsz=recipe.imgsz, batch=recipe.batch,
                workers=recipe.workers, device=recipe.device, project=str(Path(recipe.project).resolve()),
                name=recipe.name, exist_ok=True, plots=False, amp=False, seed=recipe.seed,
                # from a .pt, Ultralytics keeps its weights only if pretrained is not False (with False it
                # builds a fresh network from the checkpoint's YAML); from a YAML, False stops any download
                pretrained=recipe.resume_from is not None,
                deterministic=False, patience=recipe.patience, verbose=False, **recipe.augment)
    if recipe.hours:
        args["time"] = recipe.hours
    model.train(**args)
    return model


def export_onnx(pt: Path, out: Path, imgsz: int) -> Path:
    """ONNX export (dynamic batch and size, opset 17, unsimplified: no onnxslim needed) beside ``out``."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    try:
        with _stdout_to_stderr():
            made = Path(YOLO(str(pt)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=17,
                                         device="cpu", verbose=False))
    except Exception as e:
        raise ModelError(f"ONNX export failed: {e}", path=pt, hint="pip install onnx") from e
    if made.resolve() != out.resolve():
        shutil.move(str(made), out)
    return out


def ship(weights: Path, out_dir: Path, name: str, *, gsd_m: float, imgsz: int, research: bool = False,
         info: dict[str, Any] | None = None, onnx: bool = True) -> Path:
    """Install ``weights`` as model ``name`` in ``out_dir``: ``name.pt``, ``name.onnx``, ``name.json``.

    The checkpoint is stripped of its optimizer state (a 5.5 MB yolo11n instead of 16 MB). Returns the
    .pt path. The model card (``name.md``) is written by :func:`skysieve.detect.card.write_card`.
    """
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    pt = out_dir / f"{name}.pt"
    from ultralytics.utils.torch_utils import strip_optimizer

    tmp = out_dir / f".{name}.tmp.pt"
    shutil.copyfile(weights, tmp)
    try:
        with _stdout_to_stderr():
            strip_optimizer(str(tmp))
        ck = torch.load(tmp, map_location="cpu", weights_only=False)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot read the trained weights: {e}", path=weights) from e
    names = getattr(ck.get("model"), "names", None)
    if names is not None and tuple(names[k] for k in sorted(names)) != CLASSES:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"weights predict {names}, not {list(CLASSES)}", path=weights)
    os.replace(tmp, pt)
    if onnx:
        export_onnx(pt, out_dir / f"{name}.onnx", imgsz)
    meta = ModelMeta(classes=CLASSES, imgsz=imgsz, gsd_m=gsd_m, research=research, pt_sha256=sha256_file(pt),
                     extra=dict(info or {}))
    write_meta(out_dir / f"{name}.json", meta)
    log.info("shipped %s (%s)", pt, "with ONNX" if onnx else "no ONNX")
    return pt


def recipe_json(recipe: TrainRecipe) -> dict[str, Any]:
    d = asdict(recipe)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}

"""Shipped detector weights, their model cards, and the one place that resolves a model name to files.

A model is a set of files sharing one stem, in this folder (shipped) or anywhere else (a path)::

    skysieve-det-v6.pt     Ultralytics checkpoint (the source of truth; what training resumes from)
    skysieve-det-v6.onnx   CPU export of the same weights (run with OpenVINO or ONNX Runtime)
    skysieve-det-v6.json   metadata: classes, image size, ground sample distance, metrics
    skysieve-det-v6.md     model card for people

:func:`resolve_model` turns ``None`` (the default model), a name (``"skysieve-det-v6"``) or a path
(``runs/x/weights/best.pt``, ``my.onnx``) into a :class:`ModelRef`. It checks that the files exist and
that the metadata parse; loading the weights (and checking the classes they carry) is
:mod:`skysieve.detect.runtime`'s job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skysieve.errors import ModelError

__all__ = ["DEFAULT_MODEL", "CLASSES", "MODELS_DIR", "ModelMeta", "ModelRef", "resolve_model", "available_models",
           "sha256_file", "write_meta"]

log = logging.getLogger(__name__)

#: the default detector (trained by the project on its own synthetic data only)
DEFAULT_MODEL = "skysieve-det-v6"
#: the classes every skysieve detector must predict, in this order (YOLO class ids 0, 1, 2)
CLASSES: tuple[str, ...] = ("tank", "chimney", "drum_stockpile")
#: folder of the shipped models (package data)
MODELS_DIR = Path(__file__).resolve().parent

_WEIGHT_SUFFIXES = (".pt", ".onnx")


@dataclass(frozen=True)
class ModelMeta:
    """What inference must know about a model besides its weights.

    ``imgsz``: the square slice size in pixels the model was trained at; ``gsd_m``: the ground sample
    distance (metres per pixel) of its training images, to which inference resamples every mosaic.
    """

    classes: tuple[str, ...] = CLASSES
    imgsz: int = 512
    gsd_m: float = 0.05
    research: bool = False  # True: trained on research-only data (e.g. RSOD); not for redistribution
    pt_sha256: str | None = None  # the .pt the .onnx was exported from (a stale export is ignored)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # metrics, recipe, notes

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMeta:
        known = {"classes", "imgsz", "gsd_m", "research", "pt_sha256"}
        return cls(classes=tuple(data.get("classes", CLASSES)), imgsz=int(data.get("imgsz", 512)),
                   gsd_m=float(data.get("gsd_m", 0.05)), research=bool(data.get("research", False)),
                   pt_sha256=data.get("pt_sha256"), extra={k: v for k, v in data.items() if k not in known})

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "imgsz": self.imgsz, "gsd_m": self.gsd_m,
                "research": self.research, "pt_sha256": self.pt_sha256, **self.extra}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: its name (the file stem, stored in ``detections.model``) and its files."""

    name: str
    pt: Path | None
    onnx: Path | None
    meta_path: Path
    meta: ModelMeta
    has_meta: bool  # False: no sidecar JSON; defaults (and the checkpoint's own image size) apply

    @property
    def card(self) -> Path:
        return self.meta_path.with_suffix(".md")

    @property
    def onnx_current(self) -> bool:
        """True when the ONNX export exists and was made from the current ``.pt`` (or there is no .pt)."""
        if self.onnx is None:
            return False
        if self.pt is None or self.meta.pt_sha256 is None:
            return self.pt is None
        return sha256_file(self.pt) == self.meta.pt_sha256


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def available_models(folder: Path = MODELS_DIR) -> list[str]:
    """Names of the models in ``folder`` (stems with a .pt or .onnx file)."""
    return sorted({p.stem for p in folder.iterdir() if p.suffix in _WEIGHT_SUFFIXES})


def _read_meta(path: Path) -> tuple[ModelMeta, bool]:
    if not path.exists():
        return ModelMeta(), False
    try:
        return ModelMeta.from_json(json.loads(path.read_text(encoding="utf-8"))), True
    except (ValueError, TypeError) as e:
        raise ModelError(f"model metadata is not valid JSON: {e}", path=path,
                         hint="restore it from the shipped copy, or delete it to use the defaults") from e


def resolve_model(name_or_path: str | Path | None = None) -> ModelRef:
    """Find a model's files. ``None``: :data:`DEFAULT_MODEL`; a name: a model in :data:`MODELS_DIR`;
    a path to a ``.pt`` or ``.onnx`` file: that file and its siblings with the same stem.

    Raises :class:`ModelError` when nothing is found (the message lists the shipped models).
    """
    spec = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    candidate = Path(spec).expanduser()
    if candidate.suffix in _WEIGHT_SUFFIXES or candidate.suffix == ".json" or candidate.parent != Path("."):
        if not candidate.exists():
            raise ModelError("model file not found", path=candidate,
                             hint=f"give a .pt or .onnx file, or one of the shipped models: "
                                  f"{', '.join(available_models()) or 'none'}")
        if candidate.suffix not in _WEIGHT_SUFFIXES:
            raise ModelError(f"not a model file (expected .pt or .onnx, got {candidate.suffix or 'no suffix'})",
                             path=candidate, hint="give the weights file, e.g. runs/x/weights/best.pt")
        folder, stem = candidate.parent, candidate.stem
        pt = candidate if candidate.suffix == ".pt" else (folder / f"{stem}.pt")
        onnx = candidate if candidate.suffix == ".onnx" else (folder / f"{stem}.onnx")
    else:
        folder, stem = MODELS_DIR, spec
        pt, onnx = folder / f"{stem}.pt", folder / f"{stem}.onnx"
        if not pt.exists() and not onnx.exists():
            raise ModelError(f"no model named {spec!r}", path=folder,
                             hint=f"shipped models: {', '.join(available_models()) or 'none'}; "
                                  f"or give a path to a .pt/.onnx file")
    meta_path = folder / f"{stem}.json"
    meta, has_meta = _read_meta(meta_path)
    return ModelRef(name=stem, pt=pt if pt.exists() else None, onnx=onnx if onnx.exists() else None,
                    meta_path=meta_path, meta=meta, has_meta=has_meta)


def write_meta(path: str | Path, meta: ModelMeta) -> Path:
    """Write a model's sidecar JSON atomically."""
    from skysieve.atomic import write_json

    return write_json(path, meta.to_json())

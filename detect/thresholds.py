"""Operating thresholds per class: which boxes a user of ``skysieve detect`` gets.

One score threshold for all classes is a poor compromise: the network is surer of a drum stockpile than
of a lone tank, and a planter or a parked car scores like a weak tank. A model's metadata may carry
``class_conf`` (``{"tank": 0.6, ...}``), calibrated on synthetic worlds kept apart from the accuracy
benchmark's (:func:`calibrate`): per class, the lowest threshold whose precision reaches the target,
so recall is given up only as far as precision needs. A threshold the user sets (``--conf``, or
``[detect] conf`` in skysieve.toml) applies to every class and overrides the model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from skysieve.detect.evaluate import precision_recall
from skysieve.errors import ModelError
from skysieve.models import ModelMeta

__all__ = ["class_thresholds", "calibrate", "DEFAULT_CONF", "CALIBRATION_FLOOR", "GRID"]

DEFAULT_CONF = 0.25  # a model whose metadata recommends nothing
CALIBRATION_FLOOR = 0.25  # the lowest threshold calibration gives (validation boxes are sliced at it)
GRID = np.round(np.arange(CALIBRATION_FLOOR, 0.91, 0.025), 3)  # thresholds tried by calibration


def class_thresholds(meta: ModelMeta, conf: float | None = None) -> np.ndarray:
    """Score threshold per class (indexed like ``meta.classes``): ``conf`` for all if given, else the
    model's ``class_conf``, with its ``conf`` (or 0.25) for a class it does not name."""
    if conf is not None:
        if not 0.0 <= conf < 1.0:
            raise ModelError(f"score threshold {conf} is not between 0 and 1", hint="e.g. --conf 0.35")
        return np.full(len(meta.classes), float(conf))
    base = float(meta.extra.get("conf", DEFAULT_CONF))
    per: Mapping[str, float] = meta.extra.get("class_conf") or {}
    unknown = set(per) - set(meta.classes)
    if unknown:
        raise ModelError(f"the model's class_conf names classes it does not have: {', '.join(sorted(unknown))}",
                         hint="fix class_conf in the model's .json")
    return np.array([float(per.get(c, base)) for c in meta.classes])


def calibrate(matched: np.ndarray, score: np.ndarray, pred_cls: np.ndarray, n_true: Sequence[int],
              classes: Sequence[str], target_precision: float = 0.85, min_recall: float = 0.9
              ) -> dict[str, dict]:
    """Per class, from pooled validation boxes (``matched``: a true positive at IoU 0.5, ``score``, class
    id) and the number of true objects: the lowest threshold on :data:`GRID` whose
    precision reaches ``target_precision`` while recall stays at least ``min_recall``; failing that, the
    one with the best F1. Returns ``{class: {"conf", "precision", "recall", "met"}}``."""
    out = {}
    for c, name in enumerate(classes):
        sel = pred_cls == c
        s, m = score[sel], matched[sel].astype(bool)
        rows = []
        for t in GRID:
            _, p, r = precision_recall(m, s, n_true[c], t)
            rows.append((float(t), p, r, 2 * p * r / (p + r) if p + r else 0.0))
        ok = [row for row in rows if row[1] >= target_precision and row[2] >= min_recall]
        t, p, r, _ = ok[0] if ok else max(rows, key=lambda row: (row[3], -row[0]))
        out[name] = {"conf": round(t, 3), "precision": round(p, 3), "recall": round(r, 3), "met": bool(ok)}
    return out

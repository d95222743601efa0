"""Measuring a detector: per-class precision, recall, AP50 and AP50-95.

Two kinds of test data:

- a YOLO folder (``images/`` + ``labels/``, or a ``data.yaml``): each image is letterboxed whole to
  ``imgsz`` and scored; what ``skysieve evaluate`` and the model card report. Class names in the data
  (``classes.txt`` or the yaml's ``names``) are mapped to skysieve's (``storage_tank`` -> ``tank``);
  classes the data do not label are left out (a chimney found in RSOD is not counted as an error).
- a synthetic world (``ortho.tif`` + ``truth/objects.geojson``): the full mosaic path (resampling,
  slicing, merging) and, on top, how far the box centres lie from the truth on the ground (metres).

Matching follows COCO/Ultralytics: at each IoU threshold (0.50:0.05:0.95) predictions, by falling
score, take the best-overlapping unmatched true box of their class. AP is Ultralytics' ``ap_per_class``
(101-point interpolated). Precision and recall are reported at the operating threshold ``conf`` (what a
user of ``skysieve detect`` gets), not at the best-F1 threshold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from skysieve.detect.runtime import Detector, load_detector
from skysieve.detect.sliced import SliceSettings, detect_raster
from skysieve.errors import DatasetError
from skysieve.progress import progress

__all__ = ["ClassMetrics", "EvalReport", "match_boxes", "class_metrics", "evaluate_yolo", "evaluate_world",
           "NAME_ALIASES", "read_yolo_folder", "best_f1_conf", "WorldMatches", "match_world", "precision_recall"]

log = logging.getLogger(__name__)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: class names used by other datasets for skysieve's classes
NAME_ALIASES = {"storage_tank": "tank", "oiltank": "tank", "oil_tank": "tank", "storage-tank": "tank",
                "drums": "drum_stockpile", "drum": "drum_stockpile", "stack": "chimney", "smokestack": "chimney"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    n_true: int
    n_pred: int  # predictions at the operating threshold
    precision: float
    recall: float
    ap50: float
    ap50_95: float
    centre_error_m: dict[str, Any] | None = None  # median / p90 / max (m) and "all" distances, matched boxes (worlds)


@dataclass(frozen=True)
class EvalReport:
    model: str
    data: str
    imgsz: int | None
    conf: float | list[float]  # one threshold, or one per class
    images: int
    seconds: float
    classes: list[ClassMetrics]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [f"{'class':16s} {'true':>6s} {'pred':>6s} {'P':>6s} {'R':>6s} {'AP50':>6s} {'AP50-95':>8s}"]
        for c in self.classes:
            lines.append(f"{c.name:16s} {c.n_true:6d} {c.n_pred:6d} {c.precision:6.3f} {c.recall:6.3f} "
                         f"{c.ap50:6.3f} {c.ap50_95:8.3f}"
                         + (f"  centre err median {c.centre_error_m['median']:.3f} m, max {c.centre_error_m['max']:.3f} m"
                            if c.centre_error_m else ""))
        return "\n".join(lines)


def _conf_json(conf: float | Sequence[float]) -> float | list[float]:
    """A threshold for a report: one number, or one per class."""
    return float(conf) if np.ndim(conf) == 0 else [round(float(t), 3) for t in conf]


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def match_boxes(pred_xyxy: np.ndarray, pred_cls: np.ndarray, pred_score: np.ndarray, true_xyxy: np.ndarray,
                true_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True-positive flags (N_pred, 10) at IoU 0.50:0.95, and for IoU 0.5 the matched true index (-1: none)."""
    n = len(pred_xyxy)
    tp = np.zeros((n, len(IOU_THRESHOLDS)), bool)
    matched50 = np.full(n, -1, np.int64)
    if n == 0 or len(true_xyxy) == 0:
        return tp, matched50
    iou = _iou_matrix(np.asarray(pred_xyxy, float), np.asarray(true_xyxy, float))
    iou[np.asarray(pred_cls)[:, None] != np.asarray(true_cls)[None, :]] = 0.0
    order = np.argsort(-np.asarray(pred_score), kind="stable")
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(true_xyxy), bool)
        for i in order:
            cand = np.where(~taken & (iou[i] >= thr), iou[i], -1.0)
            j = int(cand.argmax())
            if cand[j] >= thr:
                taken[j] = True
                tp[i, t] = True
                if t == 0:
                    matched50[i] = j
    return tp, matched50


def precision_recall(hit: np.ndarray, score: np.ndarray, n_true: int, conf: float) -> tuple[int, float, float]:
    """Of one class's boxes (``hit``: a true positive at IoU 0.5; ``score``) and its ``n_true`` objects: the
    boxes kept at threshold ``conf``, precision and recall there (0 where undefined)."""
    keep = np.asarray(score) >= conf
    n_pred = int(keep.sum())
    hits = int(np.asarray(hit)[keep].sum())
    return n_pred, hits / n_pred if n_pred else 0.0, hits / n_true if n_true else 0.0


def class_metrics(tp: np.ndarray, score: np.ndarray, pred_cls: np.ndarray, true_cls: np.ndarray,
                  classes: Sequence[str], conf: float | Sequence[float],
                  evaluated: Sequence[int] | None = None) -> list[ClassMetrics]:
    """Per-class metrics from pooled matches at threshold ``conf`` (one, or one per class);
    ``evaluated``: class ids the data label (default: all)."""
    from ultralytics.utils.metrics import ap_per_class

    ids = list(range(len(classes))) if evaluated is None else list(evaluated)
    ap = {}
    if len(true_cls):
        out = ap_per_class(tp.astype(float), np.asarray(score), np.asarray(pred_cls), np.asarray(true_cls))
        for row, c in enumerate(out[6]):
            ap[int(c)] = out[5][row]
    result = []
    per_class = np.broadcast_to(np.asarray(conf, float), (len(classes),))
    for c in ids:
        n_true = int((np.asarray(true_cls) == c).sum())
        sel = np.asarray(pred_cls) == c
        n_pred, p, r = precision_recall(tp[sel, 0], np.asarray(score)[sel], n_true, per_class[c])
        a = ap.get(c, np.zeros(len(IOU_THRESHOLDS)))
        result.append(ClassMetrics(classes[c], n_true, n_pred, round(p, 4), round(r, 4), round(float(a[0]), 4),
                                   round(float(np.mean(a)), 4)))
    return result


def best_f1_conf(tp: np.ndarray, score: np.ndarray, pred_cls: np.ndarray, true_cls: np.ndarray,
                 evaluated: Sequence[int]) -> float:
    """The score threshold (0.05 to 0.9) that maximises the mean F1 at IoU 0.5 over ``evaluated`` classes."""
    best, best_f1 = 0.25, -1.0
    for t in np.arange(0.05, 0.91, 0.05):
        f1s = []
        for c in evaluated:
            sel = pred_cls == c
            _, p, r = precision_recall(tp[sel, 0], score[sel], int((true_cls == c).sum()), t)
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        if np.mean(f1s) > best_f1:
            best, best_f1 = round(float(t), 2), float(np.mean(f1s))
    return best


# -- YOLO folders ---------------------------------------------------------------------------------------------
def _names_from(folder: Path, yaml_names) -> list[str]:
    if yaml_names is not None:
        return [yaml_names[k] for k in sorted(yaml_names)] if isinstance(yaml_names, dict) else list(yaml_names)
    txt = folder / "classes.txt"
    if txt.exists():
        return [line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise DatasetError("no class names (classes.txt or data.yaml)", path=folder,
                       hint="add classes.txt with one class name a line, in label id order")


def read_yolo_folder(data: str | Path, split: str = "val") -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, label) path pairs and the class names of a YOLO dataset folder or ``data.yaml``."""
    import yaml

    data = Path(data)
    yaml_names = None
    if data.is_dir() and (data / "data.yaml").exists():
        data = data / "data.yaml"
    if data.suffix in (".yaml", ".yml"):
        if not data.exists():
            raise DatasetError("data.yaml not found", path=data)
        cfg = yaml.safe_load(data.read_text(encoding="utf-8"))
        root = Path(cfg.get("path") or data.parent)
        if not root.is_absolute():
            root = data.parent / root
        if split not in cfg and split != "val":
            splits = [k for k in ("train", "val", "test") if k in cfg]
            raise DatasetError(f"the dataset has no {split!r} split (it has: {', '.join(splits)})", path=data)
        images = root / cfg.get(split, cfg.get("val", "images"))
        yaml_names, folder = cfg.get("names"), root
    elif data.is_dir():
        folder = data
        images = data / "images" / split if (data / "images" / split).is_dir() else data / "images"
    else:
        raise DatasetError("not a YOLO dataset (folder with images/ and labels/, or data.yaml)", path=data)
    if not images.is_dir():
        raise DatasetError(f"no image folder {images}", path=data)
    pairs = []
    for img in sorted(images.rglob("*")):
        if img.suffix.lower() in _IMAGE_SUFFIXES:
            pairs.append((img, (_label_dir(images) / img.relative_to(images)).with_suffix(".txt")))
    if not pairs:
        raise DatasetError("no images found", path=images)
    if not any(lbl.exists() for _, lbl in pairs):  # a set of negatives, or labels in the wrong place
        log.warning("no label files for the %d images of %s (looked in %s): every box counts as a false flag; "
                    "a YOLO dataset keeps one .txt per image in labels/, beside images/", len(pairs), data,
                    _label_dir(images))
    return pairs, _names_from(folder, yaml_names)


def _label_dir(images: Path) -> Path:
    """YOLO convention: the labels folder mirrors the images folder with ``images`` -> ``labels``."""
    parts = list(images.parts)
    if "images" not in parts:
        return images.parent / "labels"
    i = len(parts) - 1 - parts[::-1].index("images")
    parts[i] = "labels"
    return Path(*parts)


def _read_labels(path: Path, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    arr = np.array([[float(v) for v in r[:5]] for r in rows])
    cx, cy, bw, bh = arr[:, 1] * w, arr[:, 2] * h, arr[:, 3] * w, arr[:, 4] * h
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1), arr[:, 0].astype(np.int64)


def _letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(h, w)
    resized = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.full((size, size, 3), 114, np.uint8)
    out[:resized.shape[0], :resized.shape[1]] = resized
    return out, s


def evaluate_yolo(data: str | Path, model: str | Detector | None = None, imgsz: int | None = None,
                  conf: float | Sequence[float] = 0.25, split: str = "val", batch: int = 4) -> EvalReport:
    """Score ``model`` on a YOLO folder, each image letterboxed whole to ``imgsz`` (default: the model's);
    precision and recall at ``conf`` (one threshold, or one per class)."""
    import cv2

    det = model if isinstance(model, Detector) else load_detector(model)
    t0 = time.perf_counter()
    pairs, names = read_yolo_folder(data, split)
    classes = det.meta.classes
    mapping = {}
    for i, n in enumerate(names):
        ours = NAME_ALIASES.get(n, n)
        if ours in classes:
            mapping[i] = classes.index(ours)
    if not mapping:
        raise DatasetError(f"none of the data's classes {names} is a skysieve class {list(classes)}", path=data)
    size = int(imgsz or det.meta.imgsz)
    size = max(32, size // 32 * 32)
    tps, scores, pcls, tcls = [], [], [], []
    for start in progress(range(0, len(pairs), batch), desc="evaluate", total=(len(pairs) + batch - 1) // batch):
        chunk = pairs[start:start + batch]
        imgs, scales, truths = [], [], []
        for img_path, lab_path in chunk:
            bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DatasetError("cannot read image", path=img_path)
            h, w = bgr.shape[:2]
            boxed, s = _letterbox(bgr[..., ::-1], size)
            imgs.append(boxed)
            scales.append(s)
            xyxy, cls = _read_labels(lab_path, w, h)
            keep = np.array([c in mapping for c in cls], bool)
            truths.append((xyxy[keep], np.array([mapping[c] for c in cls[keep]], np.int64)))
        for boxes, s, (txyxy, tcl) in zip(det.predict(np.stack(imgs), conf=0.001), scales, truths, strict=True):
            keep = np.isin(boxes.cls, list(mapping.values()))
            pxyxy, pcl, psc = boxes.xyxy[keep] / s, boxes.cls[keep], boxes.score[keep]
            tp, _ = match_boxes(pxyxy, pcl, psc, txyxy, tcl)
            tps.append(tp)
            scores.append(psc)
            pcls.append(pcl)
            tcls.append(tcl)
    tp, sc, pc, tc = np.concatenate(tps), np.concatenate(scores), np.concatenate(pcls), np.concatenate(tcls)
    evaluated = sorted(set(mapping.values()))
    report = EvalReport(det.name, str(data), size, _conf_json(conf), len(pairs), round(time.perf_counter() - t0, 1),
                        class_metrics(tp, sc, pc, tc, classes, conf, evaluated),
                        {"backend": det.backend_name, "split": split,
                         "best_f1_conf": best_f1_conf(tp, sc, pc, tc, evaluated)})
    log.info("evaluated %s on %s (%d images, imgsz %d)", det.name, data, len(pairs), size)
    return report


# -- synthetic worlds ------------------------------------------------------------------------------------------
def _read_truth(world: Path, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True boxes (x/y bounds in the world's CRS), class ids and box centres from ``truth/objects.geojson``."""
    import pyogrio
    import shapely

    path = world / "truth" / "objects.geojson"
    if not path.exists():
        raise DatasetError("world has no truth/objects.geojson", path=world,
                           hint="make it with `skysieve synth world`")
    meta, _, geoms, fields = pyogrio.raw.read(path)
    col = {n: f for n, f in zip(meta["fields"], fields, strict=True)}
    cls_col = col.get("class", col.get("cls"))
    boxes, ids, centres = [], [], []
    for wkb, name in zip(geoms, [] if cls_col is None else cls_col, strict=True):  # None: no objects
        if name not in classes or wkb is None:
            continue
        g = shapely.from_wkb(wkb)
        boxes.append(g.bounds)
        ids.append(classes.index(name))
        x0, y0, x1, y1 = g.bounds
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))  # the centre of the box a detector should draw
    return (np.array(boxes, float).reshape(-1, 4), np.array(ids, np.int64), np.array(centres, float).reshape(-1, 2))


def error_stats(err: np.ndarray) -> dict[str, float]:
    """Median, 90th percentile and maximum of distances (metres, rounded to mm)."""
    return {"median": round(float(np.median(err)), 3), "p90": round(float(np.percentile(err, 90)), 3),
            "max": round(float(np.max(err)), 3)}


@dataclass(frozen=True)
class WorldMatches:
    """Every box the detector found on a world (down to the slice threshold it ran at), matched to the
    truth it shows: ``tp`` (N, 10) at IoU 0.50:0.95, ``matched`` the true index at IoU 0.5 (-1: none), box
    ``score``, ``cls`` and ground ``centres``; ``true_cls`` and ``true_centres`` of the objects in view."""

    tp: np.ndarray
    matched: np.ndarray
    score: np.ndarray
    cls: np.ndarray
    centres: np.ndarray
    true_cls: np.ndarray
    true_centres: np.ndarray
    gsd_m: float
    slices: int
    skipped: int

    def centre_errors(self, sel: np.ndarray) -> np.ndarray:
        """Ground distance (m) from each selected matched box's centre to its object's."""
        return np.hypot(*(self.centres[sel] - self.true_centres[self.matched[sel]]).T)


def match_world(world: str | Path, det: Detector, settings: SliceSettings | None = None,
                ortho: str | Path | None = None) -> WorldMatches:
    """Run the full mosaic path on a synthetic world (its ``ortho.tif``, or ``ortho``: a crop, or the same
    world flown and mosaicked) at ``settings.conf`` and match its boxes to the truth on the ground (any GSD
    works). The slice threshold matters beyond the cut: boxes are merged across slice borders, so a run
    at 0.001 (for AP) merges differently from one at the operating threshold (what users get)."""
    import rasterio

    settings = settings or SliceSettings()
    world = Path(world)
    tbox, tcls, tcentre = _read_truth(world, det.meta.classes)
    with rasterio.open(ortho or world / "ortho.tif") as src:
        gsd = abs(src.transform.a)
        left, bottom, right, top = src.bounds
    inside = (tcentre[:, 0] > left) & (tcentre[:, 0] < right) & (tcentre[:, 1] > bottom) & (tcentre[:, 1] < top)
    tbox, tcls, tcentre = tbox[inside], tcls[inside], tcentre[inside]  # a crop is scored on what it shows
    found = detect_raster(ortho or world / "ortho.tif", det, settings)
    # map y grows north: bounds are (minx, miny, maxx, maxy) either way, so IoU is unaffected
    pbox = np.array([p.bounds for p in found.polygons], float).reshape(-1, 4)
    tp, matched = match_boxes(pbox, found.cls, found.score, tbox, tcls)
    return WorldMatches(tp, matched, found.score, found.cls, found.centres, tcls, tcentre, gsd, found.slices,
                        found.skipped)


def evaluate_world(world: str | Path, model: str | Detector | None = None,
                   settings: SliceSettings | None = None, ortho: str | Path | None = None,
                   thresholds: Sequence[float] | None = None) -> EvalReport:
    """Score the full mosaic path on a synthetic world (:func:`match_world`): AP from a run down to score
    0.001; precision, recall and centre errors from a run at the operating threshold (``settings.conf``,
    or per class ``thresholds``), as ``skysieve detect`` runs it (merging across slices depends on it)."""
    det = model if isinstance(model, Detector) else load_detector(model)
    settings = settings or SliceSettings()
    t0 = time.perf_counter()
    classes = det.meta.classes
    conf = np.asarray(thresholds, float) if thresholds is not None else np.full(len(classes), settings.conf)
    low = match_world(world, det, replace(settings, conf=0.001), ortho)
    w = match_world(world, det, replace(settings, conf=float(conf.min()), class_conf=tuple(float(c) for c in conf)), ortho)
    ap = {m.name: m for m in class_metrics(low.tp, low.score, low.cls, low.true_cls, classes, conf)}
    metrics = [replace(m, ap50=ap[m.name].ap50, ap50_95=ap[m.name].ap50_95)
               for m in class_metrics(w.tp, w.score, w.cls, w.true_cls, classes, conf)]
    out = []
    for m, c in zip(metrics, range(len(classes)), strict=True):
        sel = (w.cls == c) & (w.score >= conf[c]) & (w.matched >= 0)
        err = w.centre_errors(sel)
        stats = {**error_stats(err), "all": [round(float(e), 3) for e in err]} if len(err) else None
        out.append(ClassMetrics(**{**asdict(m), "centre_error_m": stats}))
    return EvalReport(det.name, str(world), det.meta.imgsz, settings.conf if thresholds is None else
                      _conf_json(conf), 1, round(time.perf_counter() - t0, 1), out,
                      {"backend": det.backend_name, "gsd_m": w.gsd_m, "slices": w.slices, "skipped": w.skipped})

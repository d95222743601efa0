"""Running a YOLO detector on batches of square slices: OpenVINO, ONNX Runtime or PyTorch.

On a CPU the runtime matters more than anything else (measured here, yolo11n, 8 slices of 512 px,
2 threads: PyTorch 196 ms, ONNX Runtime 70 ms, OpenVINO 33 ms per slice). :func:`load_detector`
therefore prefers OpenVINO on the ``.onnx`` export, then ONNX Runtime, then the ``.pt`` with PyTorch
(which is also what a GPU would use). OpenVINO computes in bfloat16 where the CPU does so natively
(:func:`openvino_precision`); the backend name says which (``openvino-bf16`` / ``openvino-f32``).
All backends return the raw YOLO head output; decoding and non-maximum suppression are shared
(:func:`decode`), so every backend gives the same boxes.

Pixel boxes here are ``(x0, y0, x1, y1)`` in slice pixels (x to the right, y down).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from skysieve.cpus import usable_cpus
from skysieve.errors import ModelError
from skysieve.models import CLASSES, ModelMeta, ModelRef, resolve_model

__all__ = ["Detector", "PixelBoxes", "load_detector", "decode", "nms", "BACKENDS"]

log = logging.getLogger(__name__)

#: runtimes in order of preference on a CPU
BACKENDS = ("openvino", "onnxruntime", "torch")


@dataclass(frozen=True)
class PixelBoxes:
    """Detections in one slice: ``xyxy`` (N, 4) float32 pixels, ``score`` (N,), ``cls`` (N,) int class ids."""

    xyxy: np.ndarray
    score: np.ndarray
    cls: np.ndarray

    @classmethod
    def empty(cls) -> PixelBoxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.score)


class _Backend(Protocol):
    def __call__(self, batch_nchw: np.ndarray) -> np.ndarray: ...


def _threads() -> int:
    return int(os.environ.get("SKYSIEVE_THREADS", "0")) or min(usable_cpus(), 8)


def nms(xyxy: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first (numpy; boxes of one class)."""
    order = np.argsort(-score, kind="stable")
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        ix = np.clip(np.minimum(xyxy[i, 2], xyxy[rest, 2]) - np.maximum(xyxy[i, 0], xyxy[rest, 0]), 0, None)
        iy = np.clip(np.minimum(xyxy[i, 3], xyxy[rest, 3]) - np.maximum(xyxy[i, 1], xyxy[rest, 1]), 0, None)
        inter = ix * iy
        order = rest[inter / np.maximum(area[i] + area[rest] - inter, 1e-9) < iou]
    return np.array(keep, np.int64)


def decode(raw: np.ndarray, conf: float, iou: float = 0.5, max_det: int = 300) -> list[PixelBoxes]:
    """YOLO head output (B, 4 + nc, anchors) -> per-image boxes above ``conf``, after class-wise NMS."""
    out: list[PixelBoxes] = []
    for pred in raw:
        scores_all = pred[4:]
        cls = scores_all.argmax(0)
        score = scores_all[cls, np.arange(scores_all.shape[1])]
        keep = score >= conf
        if not keep.any():
            out.append(PixelBoxes.empty())
            continue
        cx, cy, w, h = pred[:4, keep]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
        score, cls = score[keep].astype(np.float32), cls[keep].astype(np.int64)
        if len(score) > 10 * max_det:  # a flood of low-score boxes (evaluation at conf 0.001): keep the best
            top = np.argsort(-score)[:10 * max_det]
            xyxy, score, cls = xyxy[top], score[top], cls[top]
        offset = cls[:, None].astype(np.float32) * (float(np.abs(xyxy).max()) + 1.0)  # classes never overlap
        idx = nms(xyxy + offset, score, iou)[:max_det]
        out.append(PixelBoxes(xyxy[idx], score[idx], cls[idx]))
    return out


class Detector:
    """A loaded model: call :meth:`predict` on uint8 RGB slices of ``meta.imgsz`` pixels."""

    def __init__(self, ref: ModelRef, backend_name: str, backend: _Backend, meta: ModelMeta) -> None:
        self.ref = ref
        self.backend_name = backend_name
        self._backend = backend
        self.meta = meta

    @property
    def name(self) -> str:
        return self.ref.name

    def predict(self, slices_nhwc: np.ndarray, conf: float, iou: float = 0.5, pad_to: int = 0) -> list[PixelBoxes]:
        """Boxes for a batch of RGB slices, ``(B, S, S, 3)`` uint8 with ``S`` a multiple of 32 (normally
        ``meta.imgsz``; evaluation on other data may use another size). ``pad_to``: a short batch is padded
        with blank slices to this many (one input shape, one compiled model: OpenVINO compiles per shape);
        only the ``B`` slices' boxes are returned."""
        b, h, w, ch = slices_nhwc.shape if slices_nhwc.ndim == 4 else (0, 0, 0, 0)
        if ch != 3 or h != w or h % 32:
            raise ValueError(f"expected (B, S, S, 3) slices with S a multiple of 32, got {slices_nhwc.shape}")
        if b < pad_to:
            slices_nhwc = np.concatenate([slices_nhwc, np.zeros((pad_to - b, h, w, 3), np.uint8)])
        x = np.ascontiguousarray(slices_nhwc.transpose(0, 3, 1, 2), dtype=np.float32)
        x *= 1.0 / 255.0
        return decode(np.asarray(self._backend(x)), conf=conf, iou=iou)[:b]


def _check_classes(names, where) -> None:
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    names = tuple(str(n) for n in names)
    if names != CLASSES:
        raise ModelError(f"the model predicts classes {list(names)}, skysieve needs {list(CLASSES)}", path=where,
                         hint="train one with `skysieve train` (classes tank, chimney, drum_stockpile in that order)")


def _load_torch(ref: ModelRef):
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    assert ref.pt is not None
    try:
        model, ckpt = load_checkpoint(ref.pt, device="cpu", fuse=True)
    except Exception as e:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError, ...)
        raise ModelError(f"cannot load the weights: {type(e).__name__}: {e}", path=ref.pt,
                         hint="the file is corrupt or not an Ultralytics checkpoint; restore it or retrain") from e
    _check_classes(getattr(model, "names", {}), ref.pt)
    torch.set_num_threads(_threads())

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = model(torch.from_numpy(x))
        return (y[0] if isinstance(y, (list, tuple)) else y).numpy()

    imgsz = (ckpt.get("train_args") or {}).get("imgsz")
    return run, imgsz


def _onnx_names(path) -> tuple[str, ...] | None:
    import ast

    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelError(f"cannot read the ONNX model: {e}", path=path, hint="re-export it with `skysieve train --export`") from e
    props = {p.key: p.value for p in m.metadata_props}
    if "names" in props:
        return tuple(ast.literal_eval(props["names"]).values())
    return None


PRECISIONS = ("f32", "bf16")


def native_bf16(core) -> bool:
    """Whether OpenVINO's CPU plugin (``core``: an ``openvino.Core``) computes bfloat16 natively here."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_precision(core) -> str:
    """The arithmetic OpenVINO runs in: ``bf16`` where the CPU computes it natively (AVX512-BF16 or AMX:
    about 1.8x faster than f32 for yolo11n here, box corners within a pixel or two), else ``f32``.
    ``SKYSIEVE_PRECISION=f32`` forces full precision."""
    native = native_bf16(core)
    forced = os.environ.get("SKYSIEVE_PRECISION")
    if forced:
        if forced not in PRECISIONS:
            raise ModelError(f"SKYSIEVE_PRECISION={forced!r} is not one of {', '.join(PRECISIONS)}")
        if forced == "bf16" and not native:
            raise ModelError("SKYSIEVE_PRECISION=bf16, but this CPU has no bfloat16 arithmetic (AVX512-BF16 or AMX)",
                             hint="unset SKYSIEVE_PRECISION: OpenVINO then runs in f32")
        return forced
    return "bf16" if native else "f32"


def _load_openvino(ref: ModelRef) -> tuple[_Backend, str]:
    import openvino as ov

    core = ov.Core()
    try:
        model = core.read_model(str(ref.onnx))
    except Exception as e:
        raise ModelError(f"OpenVINO cannot read the model: {e}", path=ref.onnx) from e
    precision = openvino_precision(core)
    cache: dict[tuple[int, ...], object] = {}

    def compiled(shape: tuple[int, ...]):
        if shape not in cache:  # static shapes compile to the fastest kernels; a new shape costs ~0.3 s once
            m = model.clone()
            m.reshape(list(shape))
            cache[shape] = core.compile_model(m, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_NUM_THREADS": _threads(),
                                                          "INFERENCE_PRECISION_HINT": precision})
        return cache[shape]

    def run(x: np.ndarray) -> np.ndarray:
        return compiled(tuple(x.shape))(x)[0]

    return run, precision


def _load_onnxruntime(ref: ModelRef):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = _threads()
    try:
        session = ort.InferenceSession(str(ref.onnx), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"ONNX Runtime cannot load the model: {e}", path=ref.onnx,
                         hint="the file is corrupt; re-export it or use the .pt") from e
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run


def _available(backend: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(backend) is not None


def load_detector(model: str | ModelRef | None = None, backend: str | None = None) -> Detector:
    """Load a model (name, path or :class:`ModelRef`; ``None`` = the default) on the fastest runtime.

    ``backend``: force one of :data:`BACKENDS` (or set ``SKYSIEVE_BACKEND``). Raises :class:`ModelError`
    for a missing or corrupt file or a model whose classes are not skysieve's.
    """
    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    meta = ref.meta
    backend = backend or os.environ.get("SKYSIEVE_BACKEND") or None
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown runtime {backend!r}", hint=f"use one of {', '.join(BACKENDS)}")
    use_onnx = ref.onnx is not None and (ref.onnx_current or ref.pt is None)
    if ref.onnx is not None and not use_onnx:
        log.warning("%s is older than %s (exported from other weights); using the .pt", ref.onnx, ref.pt)
    order = [backend] if backend else [b for b in BACKENDS if b == "torch" or use_onnx]
    if backend in ("openvino", "onnxruntime") and ref.onnx is None:
        raise ModelError(f"runtime {backend} needs an .onnx export of {ref.name}", path=ref.meta_path.parent,
                         hint="export one with `skysieve train --export-only WEIGHTS`, or use --backend torch")
    if use_onnx or (backend in ("openvino", "onnxruntime")):
        names = _onnx_names(ref.onnx)
        if names is not None:
            _check_classes(names, ref.onnx)
    for name in order:
        if name == "torch":
            if ref.pt is None:
                raise ModelError("no .pt weights for the PyTorch runtime", path=ref.onnx)
            run, ck_imgsz = _load_torch(ref)
            if not ref.has_meta and ck_imgsz:
                meta = ModelMeta(imgsz=int(ck_imgsz), gsd_m=meta.gsd_m)
                log.warning("%s has no metadata file; assuming %.3f m/px at %d px", ref.pt, meta.gsd_m, meta.imgsz)
            return Detector(ref, name, run, meta)
        if not _available(name):
            continue
        if name == "openvino":
            run, precision = _load_openvino(ref)
            return Detector(ref, f"openvino-{precision}", run, meta)
        return Detector(ref, name, _load_onnxruntime(ref), meta)
    raise ModelError(f"no runtime available for {ref.name}", hint="pip install openvino (or onnxruntime)")

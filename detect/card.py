"""Model cards: ``<model>.md`` rendered from the model's sidecar JSON (one source for people and code).

The JSON (:class:`skysieve.models.ModelMeta`) holds ``training`` (data, recipe, time, machine) and
``metrics`` (one entry per evaluation: synthetic validation tiles, synthetic worlds by GSD, real
imagery); :func:`record_metrics` adds an entry and :func:`write_card` re-renders the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skysieve.atomic import write_text
from skysieve.models import ModelMeta, ModelRef, write_meta

__all__ = ["write_card", "record_metrics", "record_world_table", "record_extra", "render_card"]


def _table(classes: list[dict[str, Any]]) -> list[str]:
    lines = ["| class | true | predicted | precision | recall | AP50 | AP50-95 | centre error (median / max, m) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for c in classes:
        err = c.get("centre_error_m")
        err_txt = f"{err['median']:.3f} / {err['max']:.3f}" if err else "-"
        lines.append(f"| {c['name']} | {c['n_true']} | {c['n_pred']} | {c['precision']:.3f} | {c['recall']:.3f} | "
                     f"{c['ap50']:.3f} | {c['ap50_95']:.3f} | {err_txt} |")
    return lines


def render_card(name: str, meta: ModelMeta) -> str:
    """Markdown model card for model ``name`` from its metadata."""
    ex = meta.extra
    tr = ex.get("training", {})
    out = [f"# Model card: {name}", ""]
    if meta.research:
        out += ["> **Research weights.** Trained (in part) on research-only data; not for redistribution "
                "and not the default model.", ""]
    out += [ex.get("summary", "Detector of makeshift storage tanks, chimneys and drum stockpiles in drone "
                              "orthomosaics, for triage of suspected illegal small chemical workshops."), "",
            "## Inputs and outputs", "",
            f"- Architecture: Ultralytics YOLO11n (built from `yolo11n.yaml`, {tr.get('init', 'trained from scratch')}).",
            f"- Classes (YOLO ids 0..{len(meta.classes) - 1}): {', '.join(f'`{c}`' for c in meta.classes)}.",
            f"- Expected ground sample distance: **{meta.gsd_m:.3f} m/px**; `skysieve detect` resamples every mosaic "
            f"to it, then slices it into {meta.imgsz} x {meta.imgsz} px tiles "
            f"({meta.imgsz * meta.gsd_m:.1f} m on a side) with overlap.",
            *(["- Operating thresholds per class (`class_conf`; `--conf` sets one for all): "
               + ", ".join(f"{k} {v:g}" for k, v in ex["class_conf"].items()) + "."] if ex.get("class_conf") else []),
            "- Files: `.pt` (PyTorch, what training resumes from), `.onnx` (CPU runtimes: OpenVINO, ONNX Runtime), "
            "`.json` (this metadata), `.md` (this card).", ""]
    if tr:
        out += ["## Training", ""]
        for key, label in (("data", "Data"), ("recipe", "Recipe"), ("epochs", "Epochs"), ("time", "Time"),
                           ("machine", "Machine"), ("command", "Command")):
            if key in tr:
                val = tr[key]
                out.append(f"- {label}: " + (f"`{val}`" if key == "command" else
                                             (json.dumps(val, ensure_ascii=False) if isinstance(val, dict) else str(val))))
        out.append("")
    metrics = ex.get("metrics", {})
    if metrics or ex.get("world_accuracy"):
        out += ["## Metrics", "",
                "Precision and recall at the operating threshold (conf shown), IoU 0.5; AP over all thresholds.", ""]
        for key, m in metrics.items():
            out += [f"### {m.get('title', key)}", ""]
            if m.get("note"):
                out += [m["note"], ""]
            out += [f"Data: `{m.get('data', '?')}`; conf {m.get('conf', '?')}; image size {m.get('imgsz', '?')}; "
                    f"{m.get('images', '?')} images; runtime {m.get('extra', {}).get('backend', '?')}.", ""]
            out += _table(m.get("classes", [])) + [""]
    wa = ex.get("world_accuracy")
    if wa:
        conf = wa["conf"]
        conf = ", ".join(f"{k} {v:g}" for k, v in conf.items()) if isinstance(conf, dict) else f"{conf}"
        cal = wa.get("calibration_worlds")
        cal = (f" The per-class thresholds were calibrated on other worlds (seeds {cal['seeds']} at GSDs "
               f"{cal['gsds']}): the lowest reaching precision 0.85 at recall 0.9 there." if cal else "")
        views = wa.get("look_views")
        look = (f" As `skysieve detect` runs: each tank and chimney flag had a second look, in a slice that holds "
                f"it well inside, in {views} mirror images (`detect/refine.py`)." if views else "")
        out += ["### Synthetic worlds never used in training, full mosaic path", "",
                f"Worlds {wa['seeds']} ({wa['size_m']:g} m, rendered natively at each GSD, cropped to their "
                f"objects + 20 m), thresholds {conf}, IoU 0.5; targets: recall >= 0.9, precision >= 0.85, "
                f"centres within 0.3 m (`python benchmarks/detect_accuracy.py`).{cal}{look}", "",
                "| GSD | class | true | predicted | precision | recall | centre error, m (median / p90 / max) |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for gsd, row in wa["by_gsd"].items():
            for cls_name, r in row.items():
                e = r.get("centre_error_m")
                err = "-" if e is None else f"{e['median']:.2f} / {e['p90']:.2f} / {e['max']:.2f}"
                out.append(f"| {float(gsd) * 100:.0f} cm | {cls_name} | {r['n_true']} | {r['n_pred']} | "
                           f"{r['precision']:.3f} | {r['recall']:.3f} | {err} |")
        out.append("")
    if ex.get("limitations"):
        out += ["## Limitations", ""] + [f"- {x}" for x in ex["limitations"]] + [""]
    out += ["## Retraining", "",
            "Extend this model with more epochs or new synthetic data (weights are the starting point):", "",
            "```", f"skysieve train --data DATA/data.yaml --gsd {meta.gsd_m} --imgsz {ex.get('train_imgsz', meta.imgsz)} "
            f"--slice {meta.imgsz} --resume-from models/{name}.pt --hours 2 --ship-as {name}", "```", ""]
    return "\n".join(out)


def write_card(ref: ModelRef) -> Path:
    """(Re)write ``<model>.md`` beside the model from its metadata."""
    path = ref.meta_path.with_suffix(".md")
    write_text(path, render_card(ref.name, ref.meta))
    return path


def record_world_table(ref: ModelRef, result: dict[str, Any]) -> ModelRef:
    """Store the synthetic-world accuracy table (``benchmarks/detect_accuracy.py``) and re-render the card."""
    return record_extra(ref, "world_accuracy", result)


def record_extra(ref: ModelRef, key: str, value: Any) -> ModelRef:
    """Set ``extra[key]`` in the model's metadata and re-render the card."""
    from dataclasses import replace

    from skysieve.models import resolve_model

    write_meta(ref.meta_path, replace(ref.meta, extra={**ref.meta.extra, key: value}))
    new = resolve_model(ref.pt or ref.onnx)
    write_card(new)
    return new


def record_metrics(ref: ModelRef, key: str, report: dict[str, Any], title: str, note: str | None = None) -> ModelRef:
    """Store an evaluation (an :class:`EvalReport` as JSON) under ``metrics[key]`` and re-render the card."""
    from dataclasses import replace

    from skysieve.models import resolve_model

    extra = dict(ref.meta.extra)
    metrics = dict(extra.get("metrics", {}))
    metrics[key] = {**report, "title": title, **({"note": note} if note else {})}
    extra["metrics"] = metrics
    write_meta(ref.meta_path, replace(ref.meta, extra=extra))
    new = resolve_model(ref.pt or ref.onnx)
    write_card(new)
    return new

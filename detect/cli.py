"""``skysieve detect``, ``skysieve train``, ``skysieve evaluate`` and ``skysieve sites import``."""

from __future__ import annotations

import argparse
from pathlib import Path

from skysieve.cli import add_json_flag, emit
from skysieve.models import DEFAULT_MODEL

__all__ = ["register"]


def _cmd_detect(args: argparse.Namespace) -> int:
    from skysieve.detect.pipeline import detect_cells
    from skysieve.workspace import Workspace

    ws = Workspace.open(args.workspace)
    s = detect_cells(ws, cells=args.cell or None, model=args.model, conf=args.conf, backend=args.backend,
                     force=args.force)
    counts = ", ".join(f"{v} {k}" for k, v in s["by_class"].items())
    kept = (f" ({len(s['unchanged'])} unchanged since their last run, kept; --force runs them again)"
            if s["unchanged"] else "")
    text = (f"detect: {len(s['cells'])} cells{kept}, {s['detections']} boxes ({counts}) with {s['model']} "
            f"on {s['backend']} in {s['seconds']:.0f} s")
    for cid, why in s["rejected"]:
        text += f"\n  skipped {cid}: {why}"
    emit(args, s, text)
    return 0 if s["cells"] else 1


def _cmd_sites_import(args: argparse.Namespace) -> int:
    from skysieve.detect import import_sites
    from skysieve.workspace import Workspace

    ws = Workspace.open(args.workspace)
    res = import_sites(ws, args.file, radius_m=args.radius)
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(res.by_kind.items())) or "none"
    text = f"sites: {res.imported} imported from {res.source} ({kinds}); {len(res.rejected)} rows rejected"
    for label, why in res.rejected:
        text += f"\n  {label}: {why}"
    emit(args, {"source": res.source, "imported": res.imported, "by_kind": res.by_kind,
                "rejected": [{"row": r, "reason": w} for r, w in res.rejected]}, text)
    return 0 if res.imported or not res.rejected else 1


def _check_train_args(args: argparse.Namespace, out_dir: Path) -> None:
    """Refuse, before hours of training, what would fail or destroy something at its end."""
    import re

    from skysieve.errors import UsageError

    if args.epochs < 1 or (args.hours is not None and args.hours <= 0) or args.batch < 1 or args.workers < 0:
        raise UsageError(f"--epochs {args.epochs}, --hours {args.hours}, --batch {args.batch}, --workers {args.workers}: "
                         "epochs and batch must be 1 or more, hours more than 0",
                         hint="e.g. --hours 2 --batch 16")
    if args.imgsz < 32 or args.imgsz % 32 or (args.slice is not None and (args.slice < 32 or args.slice % 32)):
        raise UsageError(f"--imgsz {args.imgsz} / --slice {args.slice}: a multiple of 32 px", hint="e.g. 256, 416, 640")
    if args.ship_as is not None:
        if not re.fullmatch(r"(?!\.)[\w.-]+", args.ship_as):
            raise UsageError(f"--ship-as {args.ship_as!r} is not a model name (letters, digits, '.', '_', '-')")
        if (out_dir / f"{args.ship_as}.pt").exists() and not args.replace:
            raise UsageError(f"model {args.ship_as} already exists in {out_dir}: shipping would replace its weights, "
                             "metadata and card", hint="choose another --ship-as name, or add --replace")
    if args.ship_only and not Path(args.ship_only).is_file():
        raise UsageError(f"--ship-only {args.ship_only}: no such weights file")
    if not args.ship_only and args.data:
        data = Path(args.data)
        if data.is_dir():
            data = data / "data.yaml"
        if not data.is_file():
            raise UsageError(f"--data {args.data}: no data.yaml there",
                             hint="give the data.yaml that `skysieve synth dataset` wrote")
        args.data = str(data)


def _cmd_train(args: argparse.Namespace) -> int:
    from skysieve.detect.card import write_card
    from skysieve.detect.train import TrainRecipe, recipe_json, ship, train
    from skysieve.errors import UsageError
    from skysieve.models import MODELS_DIR, resolve_model

    out_dir = Path(args.models_dir) if args.models_dir else MODELS_DIR
    _check_train_args(args, out_dir)
    if args.ship_only:
        if not args.ship_as:
            raise UsageError("--ship-only needs --ship-as NAME")
        pt = ship(Path(args.ship_only), out_dir, args.ship_as, gsd_m=args.gsd, imgsz=args.slice or args.imgsz,
                  research=args.research, info={"training": {"weights": str(args.ship_only)}})
        card = write_card(resolve_model(pt))
        emit(args, {"model": str(pt), "card": str(card)}, f"train: shipped {pt} (card {card})")
        return 0
    if not args.data:
        raise UsageError("give --data DATA.yaml (build one with `skysieve synth dataset`)")
    recipe = TrainRecipe(data=Path(args.data), gsd_m=args.gsd, epochs=args.epochs, hours=args.hours,
                         imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                         resume_from=Path(args.resume_from) if args.resume_from else None, resume=args.resume,
                         project=Path(args.project), name=args.name, seed=args.seed)
    res = train(recipe)
    summary = {"best": str(res.best), "run_dir": str(res.run_dir), "epochs": res.epochs_done,
               "seconds": res.seconds, "metrics": res.metrics}
    text = f"train: {res.epochs_done} epochs in {res.seconds / 60:.0f} min; best weights {res.best}"
    if args.ship_as:
        info = {"training": {"data": str(recipe.data), "recipe": recipe_json(recipe), "epochs": res.epochs_done,
                             "time": f"{res.seconds / 60:.0f} min",
                             "init": f"fine-tuned from {recipe.resume_from}" if recipe.resume_from else
                             "trained from scratch"},
                "train_val_metrics": res.metrics}
        pt = ship(res.best, out_dir, args.ship_as, gsd_m=args.gsd, imgsz=args.slice or args.imgsz, research=args.research,
                  info=info)
        card = write_card(resolve_model(pt))
        summary.update(model=str(pt), card=str(card))
        text += f"; shipped as {pt}"
    emit(args, summary, text)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from skysieve.atomic import write_json
    from skysieve.detect.card import record_metrics
    from skysieve.detect.evaluate import evaluate_world, evaluate_yolo
    from skysieve.detect.runtime import load_detector
    from skysieve.detect.sliced import SliceSettings
    from skysieve.detect.thresholds import class_thresholds
    from skysieve.errors import UsageError

    if bool(args.data) == bool(args.world):
        raise UsageError("give either --data YOLO_DIR or --world WORLD_DIR")
    if args.imgsz is not None and (args.imgsz < 32 or args.imgsz % 32):
        raise UsageError(f"--imgsz {args.imgsz}: a multiple of 32 px", hint="e.g. 640")
    det = load_detector(args.model, backend=args.backend)
    thresholds = class_thresholds(det.meta, args.conf)
    if args.world:
        report = evaluate_world(args.world, det, SliceSettings(conf=float(thresholds.min())), thresholds=thresholds)
    else:
        report = evaluate_yolo(args.data, det, imgsz=args.imgsz, conf=thresholds, split=args.split)
    data_name = Path(args.world or args.data).name.replace(".yaml", "")
    out = Path(args.out) if args.out else Path("runs") / "evaluate" / f"{det.name}_{data_name}.json"
    write_json(out, report.to_json())
    if args.record:
        record_metrics(det.ref, args.record, report.to_json(), title=args.title or args.record)
    text = f"evaluate {det.name} on {report.data} ({report.images} images, {report.seconds:.0f} s)\n{report.table()}\n" \
           f"metrics written to {out}"
    emit(args, report.to_json(), text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="flag tanks, chimneys and drum stockpiles in the cell mosaics")
    p.add_argument("workspace", type=Path)
    p.add_argument("--cell", action="append", metavar="ID", help="only this cell (repeatable); default: all")
    p.add_argument("--model", help=f"model name or .pt/.onnx path (default: [detect] model, else {DEFAULT_MODEL})")
    p.add_argument("--conf", type=float, help="one score threshold for every class (default: [detect] conf, else the model's "
                   "per-class thresholds)")
    p.add_argument("--backend", choices=("openvino", "onnxruntime", "torch"), help="runtime (default: fastest)")
    p.add_argument("--force", action="store_true",
                   help="run cells again whose mosaic, model and settings are unchanged since their last run")
    add_json_flag(p)
    p.set_defaults(func=_cmd_detect)

    ps = sub.add_parser("sites", help="known sites (registers of idle factories, ...) and leads")
    ssub = ps.add_subparsers(dest="sites_command", metavar="ACTION", required=True)
    p = ssub.add_parser("import", help="import a register or leads (GeoJSON, GeoPackage, CSV: lon, lat, kind, name)")
    p.add_argument("workspace", type=Path)
    p.add_argument("file", type=Path)
    p.add_argument("--radius", type=float, default=50.0, help="radius in metres of the circle a point becomes")
    add_json_flag(p)
    p.set_defaults(func=_cmd_sites_import)

    p = sub.add_parser("train", help="train (or extend) a detector on a YOLO dataset and ship it with its card")
    p.add_argument("--data", help="data.yaml of the training set (from `skysieve synth dataset`)")
    p.add_argument("--gsd", type=float, default=0.04, help="GSD of the training tiles, m/px (default 0.04)")
    p.add_argument("--imgsz", type=int, default=416, help="tile size in px (default 416)")
    p.add_argument("--slice", type=int, help="slice size in px for inference (default: --imgsz; may be larger, same GSD)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--hours", type=float, help="wall-time budget; epochs are fitted into it")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--resume-from", metavar="WEIGHTS", help=f"start from these weights (e.g. models/{DEFAULT_MODEL}.pt)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run whose last.pt is --resume-from")
    p.add_argument("--project", default="runs/train")
    p.add_argument("--name", default="skysieve-det")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ship-as", metavar="NAME", help="install the best weights as model NAME (with ONNX and card)")
    p.add_argument("--ship-only", metavar="WEIGHTS", help="do not train: install WEIGHTS as --ship-as NAME")
    p.add_argument("--models-dir", help="where to install (default: the package's models/ folder)")
    p.add_argument("--research", action="store_true", help="mark as research weights (trained on research data)")
    p.add_argument("--replace", action="store_true", help="let --ship-as replace a model of that name")
    add_json_flag(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="per-class precision, recall, AP50, AP50-95 of a model (printed and JSON)")
    p.add_argument("--model", help=f"model name or path (default: {DEFAULT_MODEL})")
    p.add_argument("--data", help="YOLO folder (images/ + labels/) or data.yaml")
    p.add_argument("--world", help="a synthetic world folder (ortho.tif + truth/): full mosaic path")
    p.add_argument("--split", default="val", help="split of a data.yaml (default val)")
    p.add_argument("--imgsz", type=int, help="letterbox size for --data (default: the model's)")
    p.add_argument("--conf", type=float,
                   help="one threshold for precision/recall (default: the model's per-class thresholds)")
    p.add_argument("--backend", choices=("openvino", "onnxruntime", "torch"))
    p.add_argument("--out", help="JSON output (default runs/evaluate/<model>_<data>.json)")
    p.add_argument("--record", metavar="KEY", help="also store the result in the model's card under KEY")
    p.add_argument("--title", help="heading for --record")
    add_json_flag(p)
    p.set_defaults(func=_cmd_evaluate)

"""``skysieve synth {world,flight,dataset}``: the synthetic world, flight simulator and training data."""

from __future__ import annotations

import argparse
from pathlib import Path

from skysieve.cli import add_json_flag, emit
from skysieve.errors import UsageError

__all__ = ["register"]


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.02,0.10, got {text!r}") from e
    return a, b


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected xmin,ymin,xmax,ymax, got {text!r}") from e
    if len(vals) != 4:
        raise argparse.ArgumentTypeError(f"expected four numbers xmin,ymin,xmax,ymax, got {text!r}")
    return vals  # type: ignore[return-value]


def _ours(marker: Path) -> bool:
    """Whether ``marker`` (world.json, poses.json, data.yaml) was written by skysieve synth."""
    import json

    try:
        text = marker.read_text(encoding="utf-8")
        if marker.suffix == ".yaml":
            from skysieve.datasets.yolo import DATA_YAML_STAMP

            return text.startswith(DATA_YAML_STAMP)
        data = json.loads(text)
    except (OSError, ValueError):
        return False
    keys = {"world.json": {"seed", "digest"}, "poses.json": {"camera", "images"}}[marker.name]
    return isinstance(data, dict) and keys <= set(data)


def _fresh_output(out: Path, marker: str, replace: bool) -> None:
    """Make sure ``out`` can take a new world, flight or dataset. A file there is refused. A folder without
    ``marker`` (which is written last) goes on: an interrupted run resumes there. A finished earlier output
    is refused (its images and tiles would mix with the new ones), or with ``--replace`` deleted, but only
    if skysieve wrote it: a dataset of one's own is never deleted."""
    import shutil

    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the output", path=out)
    if not (out / marker).exists():
        return
    if not replace:
        raise UsageError(f"{out} already holds a finished output ({marker})", path=out,
                         hint="give a new folder, or --replace to delete it and make a new one")
    if not _ours(out / marker):
        raise UsageError(f"{out} holds a {marker} that skysieve did not write; not deleting it", path=out,
                         hint="give a new folder")
    shutil.rmtree(out)


def _cmd_world(args: argparse.Namespace) -> int:
    from skysieve.datasets.world import make_world

    _fresh_output(args.out, "world.json", args.replace)
    info = make_world(args.out, args.seed, size_m=args.size_m, gsd_m=args.gsd, lonlat=args.lonlat)
    if args.preview is not None:
        from skysieve.datasets.sheet import world_preview

        world_preview(info.root, args.preview)
    emit(args, {"world": str(info.root), "ortho": str(info.ortho), "objects": info.n_objects, "sites": info.n_sites,
                "crs": info.crs, "sites_register": str(info.sites_register)},
         f"world {info.root}: {info.size_m:g} m at {info.gsd_m:g} m/px, {info.crs}; {info.n_objects} labelled "
         f"objects, {info.n_sites} sites; register {info.sites_register}")
    return 0


def _cmd_flight(args: argparse.Namespace) -> int:
    from skysieve.datasets.flight import FlightPlan, fly

    _fresh_output(args.out, "poses.json", args.replace)
    plan = FlightPlan(altitude_m=args.altitude, overlap=args.overlap, sidelap=args.sidelap, camera=args.camera,
                      gps_noise_m=args.gps_noise, seed=args.seed, scale=args.scale, area_m=args.area)
    info = fly(args.world, args.out, plan)
    emit(args, {"flight": str(info.root), "images": str(info.images), "n_images": info.n_images,
                "poses": str(info.poses_json)},
         f"flight {info.root}: {info.n_images} images ({info.camera.width_px}x{info.camera.height_px} px) in "
         f"{info.images}; poses in {info.poses_json.name}")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from skysieve.datasets.yolo import build_dataset

    if args.n < 1:
        raise UsageError("--n must be at least 1")
    _fresh_output(args.out, "data.yaml", args.replace)
    path = build_dataset(args.out, args.n, imgsz=args.imgsz, gsd_range=args.gsd_range, seed=args.seed,
                         backgrounds=args.backgrounds, real=args.real, workers=args.workers,
                         farm_fraction=args.farm_fraction, backgrounds_gsd_m=args.backgrounds_gsd,
                         clutter=args.clutter, model_gsd_m=args.model_gsd)
    sheet = None
    if args.sheet is not None:
        from skysieve.datasets.sheet import contact_sheet

        sheet = contact_sheet(path.parent, args.sheet, gsd_range=args.gsd_range)
    emit(args, {"data_yaml": str(path), "n": args.n, "sheet": str(sheet) if sheet else None},
         f"dataset {path.parent}: {args.n} tiles; train with {path}" + (f"; contact sheet {sheet}" if sheet else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("synth", help="synthetic world, simulated flights and training tiles")
    sub = p.add_subparsers(dest="synth_command", metavar="WHAT", required=True)

    w = sub.add_parser("world", help="make a georeferenced synthetic world with ground truth")
    w.add_argument("out", type=Path)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--size-m", type=float, default=600.0, help="side of the square world, metres (600)")
    w.add_argument("--gsd", type=float, default=0.03, help="ortho ground sample distance, m/px (0.03)")
    w.add_argument("--lonlat", type=_pair, default=(112.88, 36.12), help="world centre lon,lat (112.88,36.12)")
    w.add_argument("--preview", type=Path, help="also write a PNG of the ortho with sites and objects drawn on")
    w.add_argument("--replace", action="store_true", help="delete an earlier output in OUT first")
    add_json_flag(w)
    w.set_defaults(func=_cmd_world)

    f = sub.add_parser("flight", help="fly a simulated DJI survey over a world")
    f.add_argument("world", type=Path)
    f.add_argument("out", type=Path)
    f.add_argument("--altitude", type=float, default=60.0, help="height above ground, m (60)")
    f.add_argument("--overlap", type=float, default=0.75)
    f.add_argument("--sidelap", type=float, default=0.65)
    f.add_argument("--camera", default="FC300S", help="FC300S, FC6310 or FC220")
    f.add_argument("--scale", type=float, default=0.25, help="image size as a fraction of the camera's (0.25)")
    f.add_argument("--gps-noise", type=float, default=1.5, help="GPS error, m, 1 sigma (1.5)")
    f.add_argument("--area", type=_box, default=None, help="xmin,ymin,xmax,ymax metres from the world's SW corner")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--replace", action="store_true", help="delete an earlier output in OUT first")
    add_json_flag(f)
    f.set_defaults(func=_cmd_flight)

    d = sub.add_parser("dataset", help="render YOLO training tiles")
    d.add_argument("out", type=Path)
    d.add_argument("--n", type=int, required=True)
    d.add_argument("--imgsz", type=int, default=640)
    d.add_argument("--gsd-range", type=_pair, default=(0.02, 0.10), help="m/px range, e.g. 0.02,0.10")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--backgrounds", type=Path, help="folder of real aerial images to paint objects onto")
    d.add_argument("--backgrounds-gsd", type=float, metavar="M",
                   help="their GSD in m/px (e.g. 0.017 for the Brighton flight): crops keep the true scale")
    d.add_argument("--real", type=Path, help="real labelled data (YOLO format) to add to the training split")
    d.add_argument("--farm-fraction", type=float, default=0.0,
                   help="share of tiles showing tank farms at 0.3-1 m/px, for transfer to satellite imagery (0)")
    d.add_argument("--clutter", type=int, default=7, metavar="N",
                   help="at most N hard negatives (planters, cars, silos, trees...) per tile (7)")
    d.add_argument("--model-gsd", type=float, metavar="M",
                   help="resample each tile to M m/px after rendering it at its own GSD, as `skysieve detect` "
                        "resamples a mosaic to the model's GSD (e.g. 0.04); default: tiles stay at their own GSD")
    d.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    d.add_argument("--sheet", type=Path, help="also write a contact sheet PNG of 16 tiles with their boxes")
    d.add_argument("--replace", action="store_true", help="delete an earlier output in OUT first")
    add_json_flag(d)
    d.set_defaults(func=_cmd_dataset)

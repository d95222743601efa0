"""Where Brighton's block scale sits: the mosaic against the reference point cloud, and the solved cameras
against the 18 GPS fixes (issue #4; docs/bundle.md).

    SKYSIEVE_DATA=../shared/data python benchmarks/brighton_scale.py [--gps-sigma 0.5 1.5]

For each ``gps_sigma_m``: the cell E576500N5188000 mosaicked at 5 cm as tests/mosaic/test_ortho_realdata.py
does; against model.laz (rasterised at 10 cm) the mean offset, local p90 and p90 after the block's
similarity, and the similarity's scale (mosaic / reference); against the GPS fixes the scale of the
similarity that maps the solved camera positions onto them (fixes / cameras) and the fixes' scatter about it,
which bounds how well the fixes set the block's scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CELL = "E576500N5188000"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SKYSIEVE_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--gps-sigma", type=float, nargs="+", default=[0.5, 1.5])
    args = ap.parse_args()
    brighton = args.data / "flights" / "brighton-beach"
    if not (brighton / "reference" / "model.laz").is_file():
        print(f"no Brighton flight with its reference under {args.data}; set --data or SKYSIEVE_DATA")
        return 2
    sys.path.insert(0, str(ROOT / "tests" / "mosaic"))
    from pyproj import Transformer
    from test_ortho_realdata import _reference

    from skysieve.mosaic.accuracy import compare_rasters, read_on_grid, similarity
    from skysieve.mosaic.ingest import ingest_flight
    from skysieve.mosaic.ortho import MosaicSettings, mosaic_cell
    from skysieve.workspace import Workspace

    grid, ref, ref_valid = _reference(brighton, 0.1)
    with tempfile.TemporaryDirectory(prefix="brighton_scale_") as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        ingest_flight(ws, brighton / "images")
        fixes = {r["image_id"]: (r["lon"], r["lat"]) for r in ws.gpkg.select("images")}
        for sigma in args.gps_sigma:
            rep = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.05, gps_sigma_m=sigma), force=True, resolve=True)
            mosaic, valid = read_on_grid(rep["ortho"], grid)
            m = compare_rasters(mosaic, ref, valid & ref_valid, grid.gsd_m, patch_px=64, min_response=0.1)
            centres = m.centres_px * grid.gsd_m * np.array([1.0, -1.0])  # east, north
            z_ref = similarity(centres, centres + m.offsets_m)
            to_crs = Transformer.from_crs("EPSG:4326", rep["crs"], always_xy=True)
            gps = np.array([to_crs.transform(*fixes[i]) for i in rep["images_used"]])
            cams = np.array(rep["view_cameras"])[:, :2]
            z_gps = similarity(cams, gps)
            za = (cams[:, 0] - cams[:, 0].mean()) + 1j * (cams[:, 1] - cams[:, 1].mean())
            zg = (gps[:, 0] - gps[:, 0].mean()) + 1j * (gps[:, 1] - gps[:, 1].mean())
            scatter = float(np.sqrt((np.abs(zg - z_gps * za) ** 2).sum() / (2 * len(za) - 4)))  # per axis
            scale_sd = scatter / float(np.sqrt((np.abs(za) ** 2).sum()))
            print(f"gps_sigma_m {sigma}: {rep['adjust']}; vs model.laz mean {m.mean_offset_m:.3f} m, local p90 "
                  f"{m.local_p90_m:.3f} m, after similarity {m.local_p90_px_after_similarity * grid.gsd_m:.3f} m, "
                  f"scale mosaic/reference {100 * (abs(z_ref) - 1):+.2f} %; GPS fixes / solved cameras scale "
                  f"{100 * (abs(z_gps) - 1):+.2f} %, fixes scatter {scatter:.2f} m per axis (sets the scale to "
                  f"+-{100 * scale_sd:.2f} %)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

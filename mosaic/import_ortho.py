"""An orthophoto made elsewhere (OpenDroneMap, DJI Terra, Pix4D) cut into the workspace's cells.

The file is reprojected to the workspace CRS through a :class:`rasterio.vrt.WarpedVRT` aligned with each
cell's output grid and read window by window, so a county-sized orthophoto never sits in memory. Each
cell gets a COG ``cells/<cell_id>/ortho.tif`` and an ``ortho.json`` (``source`` names the file), just as
a mosaic built here, so detection and review work on it too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import box

from skysieve.atomic import write_json
from skysieve.crs import crs_area_text, in_crs_area
from skysieve.errors import MosaicError
from skysieve.mosaic.cog import CogSettings, overview_grid, write_cog
from skysieve.mosaic.ortho import ORTHO_FILE, REPORT_FILE
from skysieve.mosaic.render import OutputGrid, windows

__all__ = ["import_ortho"]

log = logging.getLogger(__name__)


def _source_grid(src, crs) -> tuple[tuple[float, float, float, float], float]:
    """Bounds (workspace CRS) and native pixel size (metres) of the source raster."""
    from rasterio.warp import calculate_default_transform, transform_bounds

    bounds = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
    transform, _, _ = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
    return bounds, float(abs(transform.a))


def _footprint(src, crs, max_px: int = 1024):
    """Polygon (workspace CRS) of the source's valid pixels, traced on a reduced copy of its mask."""
    import shapely
    from rasterio.features import shapes
    from rasterio.warp import transform_geom

    f = max(1, int(np.ceil(max(src.width, src.height) / max_px)))
    h, w = int(np.ceil(src.height / f)), int(np.ceil(src.width / f))
    mask = (src.dataset_mask(out_shape=(h, w)) > 0).astype(np.uint8)
    t = src.transform @ src.transform.scale(src.width / w, src.height / h)
    polys = [shapely.geometry.shape(transform_geom(src.crs, crs, g)) for g, v in shapes(mask, mask=mask > 0, transform=t)
             if v]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def _check_in_area(src, crs, path: Path) -> None:
    """Refuse an ortho whose centre lies outside the workspace CRS's area of use (:func:`skysieve.crs.in_crs_area`)."""
    from rasterio.warp import transform as warp_xy

    cx, cy = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
    (lon,), (lat,) = warp_xy(src.crs, "EPSG:4326", [cx], [cy])
    if not in_crs_area(crs, lon, lat):
        raise MosaicError(f"the orthophoto lies at {lon:.4f} E, {lat:.4f} N, outside the workspace's area ({crs.name}: "
                          f"{crs_area_text(crs)})", path=path,
                          hint="make a workspace for that area (skysieve init NEW --crs ...), or check the file's CRS")


def import_ortho(workspace, ortho: str | Path, gsd_m: float | None = None, margin_m: float = 5.0,
                 settings: CogSettings | None = None) -> list[dict[str, Any]]:
    """Cut ``ortho`` (any CRS, 8-bit RGB[A] or grey) into the cells it covers; one report per cell written.

    ``gsd_m``: output pixel size (metres; default: the file's own). A workspace without a CRS takes one
    from the file's centre. Raises :class:`MosaicError` for a file without georeferencing.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError
    from rasterio.features import geometry_mask
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    from skysieve.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    ortho = Path(ortho)
    try:
        src = rasterio.open(ortho)
    except RasterioIOError as e:
        raise MosaicError(f"cannot open the orthophoto: {e}", path=ortho, hint="give a GeoTIFF") from e
    reports = []
    with src:
        if src.crs is None or src.transform.is_identity:
            raise MosaicError("the orthophoto has no CRS or georeferencing", path=ortho,
                              hint="export it as a GeoTIFF with its CRS (ODM: odm_orthophoto.tif)")
        from rasterio.enums import ColorInterp

        if src.colorinterp and src.colorinterp[0] == ColorInterp.palette:
            raise MosaicError("the orthophoto is a palette image (colour indices, not colours)", path=ortho,
                              hint="expand it to RGB first: gdal_translate -expand rgb IN.tif OUT.tif")
        from rasterio.enums import MaskFlags

        if all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums):
            log.warning("%s has neither nodata nor alpha: any black border around the image counts as ground "
                        "(mark it with gdal_edit.py -a_nodata 0, or export with an alpha band)", ortho.name)
        if src.count < 3:
            log.warning("%s has %d band(s): detection was trained on colour mosaics; expect more false flags",
                        ortho.name, src.count)
        if gsd_m is not None and not 0.005 <= gsd_m <= 2.0:
            raise MosaicError(f"--gsd {gsd_m} m is outside 0.005 to 2 m", path=ortho,
                              hint="leave it out to keep the file's own pixel size")
        if src.dtypes[0] != "uint8":
            raise MosaicError(f"the orthophoto is {src.dtypes[0]}, not 8-bit", path=ortho,
                              hint="convert it to 8-bit RGB first (gdal_translate -ot Byte -scale)")
        if ws.crs is None:
            from rasterio.warp import transform as warp_xy

            cx, cy = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
            lon, lat = warp_xy(src.crs, "EPSG:4326", [cx], [cy])
            ws.ensure_crs(lon[0], lat[0])
        crs = ws.require_crs()
        _check_in_area(src, crs, ortho)
        bounds, native = _source_grid(src, crs)
        gsd = float(gsd_m or round(native, 4))
        if gsd < native / 4:
            raise MosaicError(f"--gsd {gsd:g} m is more than 4 times finer than the file's {native:.3g} m", path=ortho,
                              hint="upsampling adds no detail, only size; leave --gsd out to keep the file's own")
        bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
        area = _footprint(src, crs).intersection(box(*bounds))
        stat = ortho.stat()
        digest = hashlib.sha256(f"{ortho.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{gsd}|{margin_m}".encode()).hexdigest()
        for cell in ws.cells_touching(area):
            t0 = time.perf_counter()
            keep = cell.geometry.buffer(margin_m, join_style="mitre")
            part = keep.intersection(area)
            if part.is_empty:
                continue
            # widened to whole overview factors, so the COG's overviews are exact 2 x 2 means
            grid = overview_grid(OutputGrid.covering(part.bounds, gsd), (settings or CogSettings()).blocksize)
            counts = {"cell": 0}
            with WarpedVRT(src, crs=crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=Resampling.bilinear) as vrt:

                def blocks(vrt=vrt, grid=grid, keep=keep, cell=cell, counts=counts):
                    for win in windows(grid, 512):
                        w = Window(win.col_off, win.row_off, win.width, win.height)
                        rgb = np.moveaxis(vrt.read(bands, window=w), 0, -1)
                        cov = vrt.read_masks(1, window=w) > 0
                        t = grid.transform @ grid.transform.translation(win.col_off, win.row_off)
                        cov &= geometry_mask([keep], cov.shape, t, invert=True)
                        if not cov.any():
                            continue
                        counts["cell"] += int((cov & geometry_mask([cell.geometry], cov.shape, t, invert=True)).sum())
                        rgb[~cov] = 0
                        yield win, np.ascontiguousarray(rgb), cov

                cell_dir = ws.cell_dir(cell.cell_id)
                cell_dir.mkdir(parents=True, exist_ok=True)
                staged = cell_dir / ".ortho.import.tif"  # put in place only if the cell gets more than a sliver
                write_cog(staged, grid, crs, blocks(), settings,
                          tags={"SKYSIEVE_CELL": cell.cell_id, "SKYSIEVE_SOURCE": ortho.name, "SKYSIEVE_INPUTS": digest})
            if counts["cell"] * gsd * gsd < 1e-3 * cell.geometry.area:  # only a sliver: leave the cell as it was
                staged.unlink(missing_ok=True)
                continue
            if (cell_dir / REPORT_FILE).exists():
                log.warning("cell %s: its mosaic is replaced by %s", cell.cell_id, ortho.name)
            os.replace(staged, cell_dir / ORTHO_FILE)
            for stale in ("views.tif", "dsm.tif"):  # they describe the mosaic made from photos, not this one
                (cell_dir / stale).unlink(missing_ok=True)
            report = {
                "cell_id": cell.cell_id, "status": "imported", "source": str(ortho.resolve()),
                "ortho": str(cell_dir / ORTHO_FILE), "crs": f"EPSG:{crs.to_epsg()}", "gsd_m": gsd,
                "width_px": grid.width, "height_px": grid.height, "images_used": [], "images_flagged": [],
                "cell_covered": round(counts["cell"] * gsd * gsd / cell.geometry.area, 4),
                "seconds": round(time.perf_counter() - t0, 2), "inputs_digest": digest,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            write_json(cell_dir / REPORT_FILE, report)
            reports.append(report)
            log.info("imported %s into cell %s (%.0f%% covered)", ortho.name, cell.cell_id, 100 * report["cell_covered"])
    if not reports:
        raise MosaicError("the orthophoto covers no grid cell", path=ortho,
                          hint="check that it lies in the survey area (and its CRS is right)")
    return reports

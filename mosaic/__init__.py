"""Flight ingest and per-cell orthomosaics.

- :func:`ingest_flight` checks every photo of a flight folder (EXIF/XMP, camera, height, quality,
  duplicates), places its footprint on the ground and files it under the grid cells it touches
  (``images`` layer, ``flights/<id>/manifest.json``, a coverage picture).
- :func:`build_mosaics` turns each cell's accepted photos into ``cells/<id>/ortho.tif`` (a COG) and
  ``ortho.json``: tie points and a sparse adjustment with the GPS prior solved once per flight
  (:func:`solve_flight`, cached in the flight folder), seamlines and blending, windowed rendering.
  :func:`mosaic_cell` is the per-cell job as a plain function.
- :func:`import_ortho` cuts an orthophoto made elsewhere into the workspace's cells.
"""

from __future__ import annotations

from skysieve.camera import camera_pose_from_row
from skysieve.mosaic.import_ortho import import_ortho
from skysieve.mosaic.ingest import IngestResult, IngestSettings, ingest_flight
from skysieve.mosaic.ortho import MosaicSettings, build_mosaics, cells_with_photos, mosaic_cell
from skysieve.mosaic.solve import FlightSolution, solve_flight

__all__ = ["ingest_flight", "IngestResult", "IngestSettings", "camera_pose_from_row", "build_mosaics",
           "mosaic_cell", "MosaicSettings", "cells_with_photos", "import_ortho", "solve_flight", "FlightSolution"]

"""The tables of ``survey.gpkg`` that more than one stage reads: the contract between stages.

Geometries are in the workspace's projected CRS (x/y metres); ``lon``/``lat`` columns are WGS 84
degrees; times are ISO 8601 strings (UTC unless a column says otherwise). Add columns at the end (``GeoPackage.ensure_layer`` adds
them to existing workspaces); never rename or retype one.
"""

from __future__ import annotations

from skysieve.gpkg import Column, LayerSpec

__all__ = ["CELLS", "SITES", "IMAGES", "DETECTIONS", "REVIEW_STATUSES", "SITE_KINDS"]

#: review status of a detection; ``pending`` until an analyst decides
REVIEW_STATUSES = ("pending", "confirmed", "rejected", "unsure")

#: kinds of known places (registers the county keeps) and leads from other sources
SITE_KINDS = ("idle_factory", "farm", "scrap_yard", "idle_house", "closed_enterprise", "licensed_chemical",
              "enterprise", "lead", "other")

CELLS = LayerSpec(
    "cells",
    (
        Column("cell_id", "TEXT", "NOT NULL UNIQUE"),
        Column("township", "TEXT"),
        Column("village", "TEXT"),
        Column("source", "TEXT"),  # 'regular' or the grid file's name
    ),
    "POLYGON",
    "Grid cells (网格) of the survey",
)

SITES = LayerSpec(
    "sites",
    (
        Column("site_id", "TEXT", "NOT NULL UNIQUE"),
        Column("kind", "TEXT", "NOT NULL"),  # one of SITE_KINDS
        Column("name", "TEXT"),
        Column("address", "TEXT"),
        Column("township", "TEXT"),
        Column("village", "TEXT"),
        Column("source", "TEXT"),  # file it was imported from
        Column("note", "TEXT"),
    ),
    "POLYGON",
    "Known places (registers of idle factories, farms, scrap yards, ...) and leads",
    indexes=(("kind",),),
)

IMAGES = LayerSpec(
    "images",
    (
        Column("image_id", "TEXT", "NOT NULL UNIQUE"),  # <flight_id>/<file name>
        Column("flight_id", "TEXT", "NOT NULL"),
        Column("path", "TEXT", "NOT NULL"),  # absolute path of the photo as ingested
        Column("sha256", "TEXT"),
        Column("taken_at", "TEXT"),  # ISO 8601; UTC (with Z) only where EXIF records an offset, else camera local time
        Column("lon", "REAL"),
        Column("lat", "REAL"),
        Column("x", "REAL"),  # camera position, workspace CRS (metres)
        Column("y", "REAL"),
        Column("gps_altitude_m", "REAL"),  # EXIF GPSAltitude as recorded
        Column("altitude_m", "REAL"),  # height above ground used (metres)
        Column("altitude_source", "TEXT"),  # xmp_relative | gps_relative | image_estimate | user
        Column("yaw_deg", "REAL"),  # heading of the image's top edge, degrees clockwise from GRID north of the workspace CRS
        # the heading the photo's pixels show where the mosaic found yaw_deg grossly off (a line's XMP yaw 180
        # degrees out); NULL: the recorded one holds. yaw_deg stays what the camera recorded
        Column("yaw_seen_deg", "REAL"),
        Column("pitch_deg", "REAL"),  # gimbal pitch (-90 = nadir)
        Column("roll_deg", "REAL"),
        Column("camera_model", "TEXT"),
        Column("focal_mm", "REAL"),
        Column("sensor_width_mm", "REAL"),
        Column("sensor_height_mm", "REAL"),
        Column("width_px", "INTEGER"),
        Column("height_px", "INTEGER"),
        Column("gsd_m", "REAL"),  # ground sample distance, metres per pixel
        Column("sharpness", "REAL"),
        Column("cells", "TEXT"),  # comma-separated cell ids the footprint touches
        Column("status", "TEXT", "NOT NULL"),  # accepted | rejected
        Column("reason", "TEXT"),  # why rejected (or warnings for accepted ones)
        Column("ingested_at", "TEXT"),
    ),
    "POLYGON",  # ground footprint (NULL for rejected images that could not be placed)
    "Photos of every flight, accepted and rejected, with ground footprints",
    indexes=(("flight_id",), ("status",), ("sha256",)),
)

DETECTIONS = LayerSpec(
    "detections",
    (
        Column("det_id", "TEXT", "NOT NULL UNIQUE"),
        Column("cell_id", "TEXT", "NOT NULL"),
        Column("class", "TEXT", "NOT NULL"),  # tank | chimney | drum_stockpile
        Column("score", "REAL", "NOT NULL"),
        Column("model", "TEXT", "NOT NULL"),  # model name (file stem) that raised it
        Column("x", "REAL"),  # the flag's point: box centre; a chimney's base (detect.ground); workspace CRS (metres)
        Column("y", "REAL"),
        Column("lon", "REAL"),  # the same point, WGS 84
        Column("lat", "REAL"),
        Column("width_m", "REAL"),
        Column("height_m", "REAL"),
        Column("site_id", "TEXT"),  # known site it falls in, if any
        Column("candidate_id", "TEXT"),  # group of nearby detections (a candidate site)
        Column("priority", "REAL"),  # triage score, higher = look first
        Column("priority_reason", "TEXT"),  # readable: why this priority
        Column("review_status", "TEXT", "NOT NULL DEFAULT 'pending'"),  # one of REVIEW_STATUSES
        Column("reviewed_by", "TEXT"),
        Column("reviewed_at", "TEXT"),
        Column("note", "TEXT"),
        Column("category", "TEXT"),  # suspect category chosen by the analyst
        Column("suspect_id", "TEXT"),  # set once pushed to the suspect list
        Column("created_at", "TEXT"),
    ),
    "POLYGON",  # the box on the ground
    "Model flags (tanks, chimneys, drum stockpiles) with triage priority and review status",
    indexes=(("cell_id",), ("review_status",), ("priority",), ("model",)),
)

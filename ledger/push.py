"""From confirmed detections to the suspect list.

Confirmed detections not yet in the list are grouped into candidate sites (the detector's
``candidate_id``; detections without one are grouped by proximity, centres within
``group_radius_m`` of each other). Each group becomes one suspect, or adds its evidence to an
existing suspect at the same place: one holding detections of the same candidate site, one on the same
registered site, one within ``merge_radius_m`` or whose outline holds the group's spot. A suspect is
one place for a field team to visit, so the push keeps the detector's grouping: a group and a suspect
that detection put in two different candidate sites stay two suspects however close (a tank and a drum
pile 48 m apart are two flags on the field team's map, not one flag on the tank).
Evidence chips are cut from the cell mosaics before the write transaction (file I/O never holds
the database lock); the suspects, their outlines, the detections' ``suspect_id`` and the audit
entries are written in one transaction, re-reading the detections inside it so that two analysts
pushing at once never make two suspects of one detection.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point

from skysieve.errors import NotFoundError
from skysieve.gpkg import GeoPackage
from skysieve.progress import progress
from skysieve.schema import DETECTIONS
from skysieve.workspace import Workspace

from .audit import append_audit, check_actor, utc_now
from .chips import chip_path, ortho_path, read_patch, save_chip
from .suspects import decode_suspect, next_suspect_id
from .tables import SUSPECT_OUTLINES, SUSPECTS, ensure_ledger

__all__ = ["PushSettings", "PushResult", "push_to_suspects", "push_confirmed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushSettings:
    """How detections become suspects (distances in metres, workspace CRS)."""

    #: detections without candidate_id closer than this form one site: detection's own link distance
    #: (``skysieve.detect.triage.CANDIDATE_LINK_M``), so that both group alike
    group_radius_m: float = 40.0
    #: a group this close to an existing suspect joins it, unless detection put the two in different
    #: candidate sites; the same as group_radius_m, so that pushing in one go or in steps agree
    merge_radius_m: float = 40.0
    chip_margin_m: float = 8.0  # ground around the box in an evidence chip
    chip_min_side_m: float = 24.0
    chip_max_px: int = 384
    outline_buffer_m: float = 5.0  # the evidence outline is the hull of the boxes grown by this


@dataclass
class PushResult:
    """What a push did: suspects created and extended, and detections skipped with the reason."""

    created: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # det_id -> reason

    @property
    def suspect_ids(self) -> list[str]:
        return list(dict.fromkeys(self.created + self.extended))


def _centre(d: dict[str, Any]) -> tuple[float, float]:
    if d.get("x") is not None and d.get("y") is not None:
        return float(d["x"]), float(d["y"])
    c = d["geometry"].centroid
    return c.x, c.y


def _select_candidates(ws: Workspace, det_ids: list[str] | None, cell_id: str | None,
                       result: PushResult) -> list[dict[str, Any]]:
    gp = ws.gpkg
    if det_ids is not None:
        rows = []
        for i in range(0, len(det_ids), 500):
            chunk = det_ids[i:i + 500]
            rows += gp.select(DETECTIONS.name, f"det_id IN ({','.join('?' * len(chunk))})", chunk)
        found = {r["det_id"] for r in rows}
        for d in det_ids:
            if d not in found:
                result.skipped[d] = "no such detection"
    else:
        where, params = "review_status='confirmed' AND suspect_id IS NULL", []
        if cell_id is not None:
            where += " AND cell_id=?"
            params.append(cell_id)
        rows = gp.select(DETECTIONS.name, where, params, order_by="det_id")
    out = []
    for r in rows:
        if r["suspect_id"]:
            result.skipped[r["det_id"]] = f"already evidence of suspect {r['suspect_id']}"
        elif r["review_status"] != "confirmed":
            result.skipped[r["det_id"]] = f"not confirmed (review status {r['review_status']})"
        else:
            out.append(r)
    return out


def _groups(dets: list[dict[str, Any]], radius_m: float) -> list[list[dict[str, Any]]]:
    """Group by candidate_id; the rest by single-linkage proximity (centres within ``radius_m``)."""
    by_candidate: dict[str, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for d in dets:
        (by_candidate.setdefault(d["candidate_id"], []) if d.get("candidate_id") else loose).append(d)
    groups = list(by_candidate.values())
    if loose:
        xy = np.array([_centre(d) for d in loose], dtype=float)
        parent = list(range(len(loose)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        tree = shapely.STRtree([Point(p) for p in xy])
        for i, j in zip(*tree.query([Point(p) for p in xy], predicate="dwithin", distance=radius_m), strict=True):
            ri, rj = find(int(i)), find(int(j))
            if ri != rj:
                parent[ri] = rj
        clusters: dict[int, list[dict[str, Any]]] = {}
        for i, d in enumerate(loose):
            clusters.setdefault(find(i), []).append(d)
        groups += list(clusters.values())
    return groups


def _cut_chips(ws: Workspace, dets: list[dict[str, Any]], s: PushSettings) -> dict[str, str]:
    """det_id -> chip path relative to the workspace, for detections whose cell has a mosaic."""
    out: dict[str, str] = {}
    for d in progress(dets, "evidence chips", total=len(dets)):
        target = chip_path(ws, d["det_id"])
        if not target.exists():
            minx, miny, maxx, maxy = d["geometry"].bounds if d.get("geometry") is not None else (*_centre(d),) * 2
            cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
            half = max(s.chip_min_side_m, max(maxx - minx, maxy - miny) + 2 * s.chip_margin_m) / 2
            try:
                rgb = read_patch(ortho_path(ws, d["cell_id"]), (cx - half, cy - half, cx + half, cy + half),
                                 s.chip_max_px)
            except Exception as e:  # a damaged mosaic must not stop the push
                log.warning("no chip for %s: cannot read the mosaic of cell %s (%s)", d["det_id"], d["cell_id"], e)
                continue
            if rgb is None:
                log.info("no chip for %s: cell %s has no mosaic there", d["det_id"], d["cell_id"])
                continue
            save_chip(rgb, target)
        out[d["det_id"]] = target.relative_to(ws.root).as_posix()
    return out


def _classes_text(dets: Iterable[dict[str, Any]]) -> str:
    counts = Counter(d["class"] for d in dets)
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def _place(ws: Workspace, group: list[dict[str, Any]], s: PushSettings) -> dict[str, Any]:
    """Spot, outline, cell, township/village and site of a group of detections."""
    gp = ws.gpkg
    xy = np.array([_centre(d) for d in group])
    x, y = (float(v) for v in xy.mean(axis=0))
    site_ids = [d["site_id"] for d in group if d.get("site_id")]
    site = None
    if site_ids and gp.has_layer("sites"):
        rows = gp.select("sites", "site_id=?", (Counter(site_ids).most_common(1)[0][0],))
        site = rows[0] if rows else None
    boxes = [d["geometry"] for d in group if d.get("geometry") is not None]
    if site is not None and site.get("geometry") is not None:
        outline, source = site["geometry"], "site"
    else:
        outline = shapely.union_all(boxes or [Point(x, y)]).convex_hull.buffer(s.outline_buffer_m)
        source = "evidence"
    cell_id = Counter(d["cell_id"] for d in group).most_common(1)[0][0]
    cell = gp.select("cells", "cell_id=?", (cell_id,)) if gp.has_layer("cells") else []
    township = (site or {}).get("township") or (cell[0]["township"] if cell else None)
    village = (site or {}).get("village") or (cell[0]["village"] if cell else None)
    lon, lat = ws.to_lonlat(x, y)
    return {"x": x, "y": y, "lon": float(lon), "lat": float(lat), "cell_id": cell_id, "township": township,
            "village": village, "site_id": site["site_id"] if site else None,
            "site_kind": site["kind"] if site else None, "site_name": site["name"] if site else None,
            "outline": outline, "outline_source": source}


_SITE_REACH_M = 500.0  # a site outline is looked for among suspects this close (a large factory compound)


def _suspect_row(gp: GeoPackage, sid: str) -> dict[str, Any] | None:
    rows = gp.select(SUSPECTS.name, "suspect_id=?", (sid,))
    return rows[0] if rows else None


def _told_apart(gp: GeoPackage, group_candidates: set[str | None], sid: str) -> bool:
    """Detection put every detection of the group and of suspect ``sid`` into candidate sites, and into
    different ones: two places, however close."""
    if not group_candidates or None in group_candidates:
        return False
    theirs = {r["candidate_id"] for r in gp.select(DETECTIONS.name, "suspect_id=?", (sid,))}
    return bool(theirs) and None not in theirs and not theirs & group_candidates


def _same_place_suspect(ws: Workspace, group: list[dict[str, Any]], place: dict[str, Any],
                        s: PushSettings) -> dict[str, Any] | None:
    """The suspect ``group`` is more evidence of, if any (a suspect is one place for a field team to visit):

    1. one holding a detection of the same candidate site (its tank pushed before, its drums now), within
       ``_SITE_REACH_M`` of the group's spot;
    2. one on the same registered site (a factory compound is visited once);
    3. the nearest within ``merge_radius_m``, or whose outline holds the group's spot, unless detection
       told the two apart (:func:`_told_apart`: both wholly in candidate sites, and different ones).
    """
    gp = ws.gpkg
    ids = {d["det_id"] for d in group}
    cands = {d.get("candidate_id") or None for d in group}
    named = sorted(c for c in cands if c)
    if named:
        rows = gp.select(DETECTIONS.name, f"candidate_id IN ({','.join('?' * len(named))}) AND suspect_id IS NOT NULL",
                         named)
        votes = Counter(r["suspect_id"] for r in rows if r["det_id"] not in ids)
        for sid in sorted(votes, key=lambda k: (-votes[k], k)):
            row = _suspect_row(gp, sid)
            # a candidate is single-linkage over every detection, rejected ones too: a chain of look-alikes
            # can link places far apart, so its suspect must also be within reach of this group
            if row is not None and np.hypot(row["x"] - place["x"], row["y"] - place["y"]) <= _SITE_REACH_M:
                return row
    if place.get("site_id"):
        rows = gp.select(SUSPECTS.name, "site_id=?", (place["site_id"],), order_by="suspect_id")
        if rows:
            return rows[0]
    x, y, radius_m = place["x"], place["y"], s.merge_radius_m
    rows = gp.select(SUSPECTS.name, "x BETWEEN ? AND ? AND y BETWEEN ? AND ?",
                     (x - radius_m, x + radius_m, y - radius_m, y + radius_m))
    near = sorted((float(np.hypot(r["x"] - x, r["y"] - y)), r["suspect_id"], r) for r in rows)
    for dist, sid, r in near:
        if dist <= radius_m and not _told_apart(gp, cands, sid):
            return r
    p = Point(x, y)  # inside the outline of a (big) site nearby also counts
    reach = _SITE_REACH_M
    for r in gp.select(SUSPECTS.name, "x BETWEEN ? AND ? AND y BETWEEN ? AND ?",
                       (x - reach, x + reach, y - reach, y + reach), order_by="suspect_id"):
        outline = gp.select(SUSPECT_OUTLINES.name, "suspect_id=?", (r["suspect_id"],))
        if outline and outline[0]["geometry"] is not None and outline[0]["geometry"].contains(p) and \
                (outline[0]["source"] == "site" or not _told_apart(gp, cands, r["suspect_id"])):
            return r
    return None


def push_confirmed(ws: Workspace, reviewer: str, *, det_ids: Iterable[str] | None = None,
                   cell_id: str | None = None, settings: PushSettings | None = None) -> PushResult:
    """Push confirmed detections (``det_ids``, else all confirmed ones, in ``cell_id`` if given) to the list.

    Detections that are unknown, not confirmed or already pushed are skipped with a reason
    (``PushResult.skipped``); the others are pushed.
    """
    reviewer = check_actor(reviewer)
    s = settings or PushSettings()
    if cell_id is not None and not ws.cells("cell_id=?", (cell_id,)):
        raise NotFoundError(f"no cell {cell_id!r} in this workspace", ref=cell_id, hint=ws.cell_list_hint())
    ensure_ledger(ws)
    result = PushResult()
    wanted = list(dict.fromkeys(det_ids)) if det_ids is not None else None
    chips = _cut_chips(ws, _select_candidates(ws, wanted, cell_id, PushResult()), s)
    gp = ws.gpkg
    with gp.transaction():
        dets = _select_candidates(ws, wanted, cell_id, result)  # again, inside the lock
        next_number = int(next_suspect_id(gp)[1:])
        for group in _groups(dets, s.group_radius_m):
            new_id = f"S{next_number:05d}"
            sid = _push_group(ws, group, reviewer, chips, s, result, new_id)
            if sid == new_id:
                next_number += 1
            ids = [d["det_id"] for d in group]
            gp.update(DETECTIONS.name, f"det_id IN ({','.join('?' * len(ids))})", ids, {"suspect_id": sid})
        for table, geoms in _new_geoms(gp, result).items():
            _grow_extent(gp, table, geoms)
    for det, why in result.skipped.items():
        log.warning("not pushed: %s: %s", det, why)
    log.info("push by %s: %d suspects created, %d extended, %d detections skipped", reviewer,
             len(result.created), len(result.extended), len(result.skipped))
    return result


def _push_group(ws: Workspace, group: list[dict[str, Any]], reviewer: str, chips: dict[str, str],
                s: PushSettings, result: PushResult, new_id: str) -> str:
    """Add ``group`` to the suspect at its place, or make suspect ``new_id``; returns the suspect's id."""
    gp = ws.gpkg
    now = utc_now()
    place = _place(ws, group, s)
    ids = [d["det_id"] for d in group]
    new_chips = [chips[i] for i in ids if i in chips]
    existing = _same_place_suspect(ws, group, place, s)
    if existing is not None:
        old = decode_suspect(existing)
        sid = old["suspect_id"]
        all_ids = old["det_ids"] + [i for i in ids if i not in old["det_ids"]]
        all_dets = gp.select(DETECTIONS.name, f"det_id IN ({','.join('?' * len(all_ids))})", all_ids)
        all_dets = [d for d in all_dets if d["det_id"] not in ids] + group
        gp.update(SUSPECTS.name, "suspect_id=?", (sid,), {
            "det_ids": json.dumps(all_ids), "chips": json.dumps(old["chips"] + [c for c in new_chips
                                                                                if c not in old["chips"]]),
            "classes": _classes_text(all_dets), "n_detections": len(all_ids),
            "max_score": max(d["score"] for d in all_dets),
            "priority": max((d["priority"] for d in all_dets if d.get("priority") is not None), default=None),
            "category": old["category"] or _majority_category(group),
            "updated_by": reviewer, "updated_at": now})
        outline_rows = gp.select(SUSPECT_OUTLINES.name, "suspect_id=?", (sid,))
        if outline_rows and outline_rows[0]["source"] == "evidence" and place["outline_source"] == "evidence":
            merged = shapely.union_all([outline_rows[0]["geometry"], place["outline"]]).convex_hull
            gp.update(SUSPECT_OUTLINES.name, "suspect_id=?", (sid,), {"geometry": merged})
        append_audit(gp, reviewer, "suspect", sid, "evidence", field="det_ids", old=json.dumps(old["det_ids"]),
                     new=json.dumps(all_ids), note=f"{len(ids)} confirmed detection(s) added", at=now)
        result.extended.append(sid)
        return sid
    sid = new_id
    row = {k: place[k] for k in ("x", "y", "lon", "lat", "cell_id", "township", "village", "site_id",
                                 "site_kind", "site_name")}
    row.update({
        "suspect_id": sid, "geometry": Point(place["x"], place["y"]), "category": _majority_category(group),
        "status": "suspected", "classes": _classes_text(group), "n_detections": len(group),
        "max_score": max(d["score"] for d in group),
        "priority": max((d["priority"] for d in group if d.get("priority") is not None), default=None),
        "det_ids": json.dumps(ids), "chips": json.dumps(new_chips),
        "note": "; ".join(d["note"] for d in group if d.get("note")) or None,
        "created_by": reviewer, "created_at": now, "updated_by": reviewer, "updated_at": now,
    })
    gp.insert(SUSPECTS.name, [row])
    gp.insert(SUSPECT_OUTLINES.name, [{"suspect_id": sid, "source": place["outline_source"],
                                       "geometry": place["outline"]}])
    append_audit(gp, reviewer, "suspect", sid, "create", field="status", old=None, new="suspected",
                 note=f"from confirmed detection(s) {', '.join(ids)}", at=now)
    result.created.append(sid)
    return sid


def _new_geoms(gp: GeoPackage, result: PushResult) -> dict[str, list[shapely.Geometry]]:
    """Geometries of the suspects (and outlines) this push wrote, by table."""
    ids = result.suspect_ids
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {t: [r["geometry"] for r in gp.select(t, f"suspect_id IN ({marks})", ids) if r["geometry"] is not None]
            for t in (SUSPECTS.name, SUSPECT_OUTLINES.name)}


def _grow_extent(gp: GeoPackage, table: str, geoms: list[shapely.Geometry]) -> None:
    """Widen the table's extent in ``gpkg_contents`` (QGIS' "zoom to layer") to hold ``geoms``."""
    if not geoms:
        return
    con = gp.connection()
    bounds = [shapely.total_bounds(np.array(geoms, dtype=object)).tolist()]
    old = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name=?", (table,)).fetchone()
    if old is not None and None not in tuple(old):
        bounds.append(list(old))
    b = np.array(bounds)
    con.execute("UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=? WHERE table_name=?",
                (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max(), table))


def _majority_category(group: list[dict[str, Any]]) -> str | None:
    cats = [d["category"] for d in group if d.get("category")]
    return Counter(cats).most_common(1)[0][0] if cats else None


def push_to_suspects(ws: Workspace, reviewer: str, *, det_ids: Iterable[str] | None = None,
                     cell_id: str | None = None) -> list[str]:
    """Push confirmed detections to the suspect list; returns the ids of the suspects created or extended.

    See :func:`push_confirmed` (which also reports the detections it skipped and why).
    """
    return push_confirmed(ws, reviewer, det_ids=det_ids, cell_id=cell_id).suspect_ids

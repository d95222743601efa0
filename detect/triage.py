"""Triage: which known site each detection sits in, which detections form one candidate site, and
how urgently an analyst should look at it. The whole rule is the table :data:`WEIGHTS` and the
function :func:`score_detection`; ``priority_reason`` spells out every term in words.

``priority = site[kind of the site it falls in] + class[class] + per_extra_class * (classes that
co-occur - 1) + near_lead (if within LEAD_RADIUS_M of a lead) + score * detection score``

- *site*: closed enterprises (ordered to shut, yet something is there) rank highest, then idle
  factories, idle houses, abandoned farms and scrap yards; a place on no register is a moderate 1.0
  (unregistered is how many workshops hide); licensed chemical plants are expected to have tanks (0).
- *co-occurrence*: a tank, a chimney and a drum stockpile in one site (or, outside known sites, in one
  candidate) is the signature of a workshop; each class beyond the first adds ``per_extra_class``.
  Rejected detections do not count.
- *near a lead*: a tip from another source (power use that jumped, a hazardous-goods truck that
  stopped) within ``LEAD_RADIUS_M`` metres of the detection's centre.
- *score*: the model's confidence breaks ties.

Candidates: detections whose centres lie within ``CANDIDATE_LINK_M`` metres of another (single
linkage) share a ``candidate_id`` (``cand-`` + the smallest det_id of the group, stable across reruns
as long as that detection stays).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely

from skysieve.schema import DETECTIONS, SITES
from skysieve.workspace import Workspace

__all__ = ["WEIGHTS", "LEAD_RADIUS_M", "CANDIDATE_LINK_M", "Priority", "score_detection", "group_candidates",
           "triage_workspace"]

log = logging.getLogger(__name__)

#: the triage rule's weights (see the module docstring)
WEIGHTS: dict = {
    "site": {
        "closed_enterprise": 3.0,
        "idle_factory": 2.5,
        "idle_house": 2.0,
        "farm": 2.0,
        "scrap_yard": 2.0,
        "enterprise": 1.0,
        "other": 1.0,
        None: 1.0,  # on no register
        "licensed_chemical": 0.0,
    },
    "class": {"tank": 0.5, "chimney": 0.5, "drum_stockpile": 0.5},
    "per_extra_class": 1.5,
    "near_lead": 2.0,
    "score": 1.0,
}
#: a lead within this distance (metres) of a detection raises its priority
LEAD_RADIUS_M = 150.0
#: detections closer than this (metres, centre to centre) belong to one candidate site
CANDIDATE_LINK_M = 40.0

_SITE_WORDS = {
    "closed_enterprise": "closed enterprise", "idle_factory": "idle factory", "idle_house": "idle house",
    "farm": "abandoned farm", "scrap_yard": "scrap yard", "enterprise": "enterprise", "other": "known site",
    "licensed_chemical": "licensed chemical plant", "lead": "lead area",
}
_CLASS_WORDS = {"tank": "tanks", "chimney": "chimney", "drum_stockpile": "drums"}


@dataclass(frozen=True)
class Priority:
    value: float
    reason: str


def score_detection(cls: str, score: float, site_kind: str | None, site_name: str | None,
                    co_classes: frozenset[str], lead_name: str | None, lead_distance_m: float | None) -> Priority:
    """Priority of one detection and the reason in words (see :data:`WEIGHTS`)."""
    w = WEIGHTS
    kind = site_kind if site_kind in w["site"] else (None if site_kind in (None, "lead") else "other")
    terms: list[tuple[float, str]] = []
    site_w = w["site"][kind]
    if kind is None:
        terms.append((site_w, "on no site register"))
    else:
        label = _SITE_WORDS.get(kind, kind)
        terms.append((site_w, f"in {label} {site_name!r}" if site_name else f"in a {label}"))
    terms.append((w["class"].get(cls, 0.0), cls.replace("_", " ")))
    extra = max(0, len(co_classes) - 1)
    if extra:
        words = " + ".join(_CLASS_WORDS.get(c, c) for c in sorted(co_classes, key=_class_order))
        terms.append((w["per_extra_class"] * extra, f"{words} together"))
    if lead_distance_m is not None:
        name = f" {lead_name!r}" if lead_name else ""
        terms.append((w["near_lead"], f"{lead_distance_m:.0f} m from lead{name}"))
    terms.append((w["score"] * score, f"score {score:.2f}"))
    value = round(sum(t[0] for t in terms), 3)
    reason = "; ".join(f"{text} (+{v:.2g})" for v, text in terms if v > 0 or text.startswith("in licensed"))
    return Priority(value, reason)


def _class_order(c: str) -> int:
    return ("tank", "chimney", "drum_stockpile").index(c) if c in ("tank", "chimney", "drum_stockpile") else 9


def group_candidates(xy: np.ndarray, link_m: float = CANDIDATE_LINK_M) -> np.ndarray:
    """Single-linkage groups of points (N, 2) metres closer than ``link_m``: a group label per point."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(xy)
    if n == 0:
        return np.zeros(0, np.int64)
    pairs = cKDTree(xy).query_pairs(link_m, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    return connected_components(graph, directed=False)[1]


def triage_workspace(ws: Workspace) -> int:
    """Recompute site, candidate and priority of every detection in the workspace; returns rows updated.

    Runs after each detection run and each site import; cheap (a few ms per thousand detections).
    """
    if not ws.gpkg.has_layer(DETECTIONS.name):
        return 0
    dets = ws.gpkg.select(DETECTIONS.name, order_by="det_id")
    if not dets:
        return 0
    sites = ws.gpkg.select(SITES.name) if ws.gpkg.has_layer(SITES.name) else []
    places = [s for s in sites if s["kind"] != "lead" and s["geometry"] is not None]
    leads = [s for s in sites if s["kind"] == "lead" and s["geometry"] is not None]
    xy = np.array([[d["x"], d["y"]] for d in dets], float)
    points = shapely.points(xy)

    site_of: list[dict | None] = [None] * len(dets)
    if places or leads:
        tree_sites = places or leads
        tree = shapely.STRtree([s["geometry"] for s in tree_sites])
        pt_idx, site_idx = tree.query(points, predicate="within")
        for p, s in zip(pt_idx, site_idx, strict=True):
            cand = tree_sites[s]
            cur = site_of[p]
            if cur is None or WEIGHTS["site"].get(cand["kind"], 1.0) > WEIGHTS["site"].get(cur["kind"], 1.0):
                site_of[p] = cand
        if places and leads:  # a detection in no register site may still sit inside a lead's area
            lead_tree = shapely.STRtree([s["geometry"] for s in leads])
            for p, s in zip(*lead_tree.query(points, predicate="within"), strict=True):
                if site_of[p] is None:
                    site_of[p] = leads[s]

    # candidate sites link what is still evidence: a rejected look-alike between two places must not chain
    # them into one (it gets a candidate of its own)
    active = [d["review_status"] != "rejected" for d in dets]
    on = np.nonzero(active)[0]
    labels = np.empty(len(dets), np.int64)
    labels[on] = group_candidates(xy[on]) if len(on) else []
    off = np.nonzero(~np.asarray(active))[0]
    labels[off] = (int(labels[on].max()) + 1 if len(on) else 0) + np.arange(len(off))
    cand_id: dict[int, str] = {}
    for d, lab in zip(dets, labels, strict=True):
        cand_id.setdefault(int(lab), f"cand-{d['det_id']}")
    classes_by_site: dict[str, set[str]] = {}
    classes_by_cand: dict[int, set[str]] = {}
    for d, s, lab, on in zip(dets, site_of, labels, active, strict=True):
        if not on:
            continue
        classes_by_cand.setdefault(int(lab), set()).add(d["class"])
        if s is not None:
            classes_by_site.setdefault(s["site_id"], set()).add(d["class"])

    lead_geoms = [s["geometry"] for s in leads]
    lead_tree = shapely.STRtree(lead_geoms) if leads else None
    updates = []
    for i, d in enumerate(dets):
        s = site_of[i]
        co = set(classes_by_cand.get(int(labels[i]), set()))
        if s is not None:
            co |= classes_by_site.get(s["site_id"], set())
        co.add(d["class"])
        lead_name = lead_dist = None
        if lead_tree is not None:
            j = lead_tree.query_nearest(points[i], max_distance=LEAD_RADIUS_M, return_distance=True)
            if len(j[0]):
                k = int(j[0][0])
                lead_name, lead_dist = leads[k]["name"] or leads[k]["site_id"], float(j[1][0])
        kind = s["kind"] if s is not None else None
        pr = score_detection(d["class"], float(d["score"]), kind, (s["name"] or s["site_id"]) if s else None,
                             frozenset(co), lead_name, lead_dist)
        updates.append((s["site_id"] if s else None, cand_id[int(labels[i])], pr.value, pr.reason, d["det_id"]))
    with ws.gpkg.transaction() as con:
        con.executemany(f'UPDATE "{DETECTIONS.name}" SET site_id=?, candidate_id=?, priority=?, priority_reason=? '
                        "WHERE det_id=?", updates)
    log.info("triage: %d detections, %d candidates, %d in known sites", len(dets), len(cand_id),
             sum(s is not None for s in site_of))
    return len(updates)

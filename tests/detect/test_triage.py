"""Triage: site of each detection, candidate groups, priority and its reason."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from skysieve.detect.triage import CANDIDATE_LINK_M, group_candidates, score_detection, triage_workspace
from skysieve.schema import DETECTIONS, SITES
from skysieve.workspace import Workspace

X0, Y0 = 400000.0, 4000000.0


def _prio(kind, co=("tank",), lead=None):
    return score_detection("tank", 0.8, kind, "site", frozenset(co), "lead" if lead else None, lead).value


def test_closed_and_idle_sites_rank_above_unknown_places_above_licensed_plants():
    assert _prio("closed_enterprise") > _prio("idle_factory") > _prio(None) > _prio("licensed_chemical")


def test_co_occurring_classes_and_a_nearby_lead_raise_priority():
    one = _prio(None)
    three = _prio(None, co=("tank", "chimney", "drum_stockpile"))
    assert three - one == pytest.approx(3.0)
    assert _prio(None, lead=80.0) - one == pytest.approx(2.0)


def test_reason_says_why_in_words():
    p = score_detection("drum_stockpile", 0.91, "closed_enterprise", "Dye works", frozenset({"tank", "drum_stockpile"}),
                        "power jump", 40.0)
    assert "closed enterprise 'Dye works'" in p.reason
    assert "tanks + drums together" in p.reason
    assert "40 m from lead 'power jump'" in p.reason
    assert "score 0.91" in p.reason


def test_candidates_link_nearby_points_only():
    xy = np.array([[0, 0], [CANDIDATE_LINK_M * 0.9, 0], [CANDIDATE_LINK_M * 1.8, 0], [1000, 1000]])
    labels = group_candidates(xy)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    assert len(group_candidates(np.zeros((0, 2)))) == 0


def _det(det_id, cls, x, y, status="pending", score=0.8):
    box = shapely.box(x - 1, y - 1, x + 1, y + 1)
    return {"det_id": det_id, "cell_id": "c1", "class": cls, "score": score, "model": "m", "x": x, "y": y,
            "review_status": status, "geometry": box}


def test_triage_workspace_assigns_sites_candidates_and_priorities(tmp_path):
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    ws.layer(SITES)
    ws.layer(DETECTIONS)
    ws.gpkg.insert("sites", [
        {"site_id": "closed-1", "kind": "closed_enterprise", "name": "Old plant",
         "geometry": shapely.box(X0 - 50, Y0 - 50, X0 + 50, Y0 + 50)},
        {"site_id": "lic-1", "kind": "licensed_chemical", "name": "Licensed",
         "geometry": shapely.box(X0 + 500, Y0 - 50, X0 + 600, Y0 + 50)},
        {"site_id": "lead-1", "kind": "lead", "name": "truck stop",
         "geometry": shapely.Point(X0 + 1000, Y0).buffer(50)},
    ])
    ws.gpkg.insert("detections", [
        _det("a", "tank", X0, Y0), _det("b", "chimney", X0 + 10, Y0), _det("c", "drum_stockpile", X0 + 20, Y0),
        _det("d", "tank", X0 + 550, Y0),
        _det("e", "tank", X0 + 1100, Y0),          # 50 m beyond the lead's circle
        _det("f", "chimney", X0 + 3000, Y0, status="rejected"),
    ])
    assert triage_workspace(ws) == 6
    rows = {r["det_id"]: r for r in ws.gpkg.select("detections")}
    assert rows["a"]["site_id"] == rows["b"]["site_id"] == "closed-1"
    assert rows["a"]["candidate_id"] == rows["c"]["candidate_id"] == "cand-a"
    assert rows["d"]["site_id"] == "lic-1" and rows["e"]["site_id"] is None
    assert "tanks + chimney + drums together" in rows["a"]["priority_reason"]
    assert "from lead 'truck stop'" in rows["e"]["priority_reason"]
    order = sorted(rows, key=lambda k: -rows[k]["priority"])
    assert order[0] in "abc" and order.index("e") < order.index("d")
    assert rows["d"]["priority"] < rows["e"]["priority"]


def test_rejected_look_alikes_do_not_chain_two_places_into_one_candidate(tmp_path):
    """Two tanks 3 links apart with rejected boxes between them (a row of greenhouse roofs called tanks and
    rejected): two candidate sites, not one, so push does not merge two places to visit."""
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    ws.layer(DETECTIONS)
    step = CANDIDATE_LINK_M * 0.9
    ws.gpkg.insert("detections", [_det("a", "tank", X0, Y0), _det("z", "tank", X0 + 3 * step, Y0),
                                  _det("r1", "tank", X0 + step, Y0, status="rejected"),
                                  _det("r2", "tank", X0 + 2 * step, Y0, status="rejected")])
    triage_workspace(ws)
    cand = {r["det_id"]: r["candidate_id"] for r in ws.gpkg.select("detections")}
    assert cand["a"] != cand["z"] and len(set(cand.values())) == 4
    ws.gpkg.update("detections", "det_id IN ('r1', 'r2')", (), {"review_status": "pending"})
    triage_workspace(ws)  # still open: the chain is evidence until reviewed
    assert len({r["candidate_id"] for r in ws.gpkg.select("detections")}) == 1

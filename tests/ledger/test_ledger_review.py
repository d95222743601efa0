"""Review services on a real GeoPackage: queue, decisions, undo, notes, categories, push to suspects."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skysieve.errors import LedgerError, NotFoundError
from skysieve.ledger import (
    SUSPECT_CATEGORIES,
    audit_trail,
    decide,
    get_detection,
    get_suspect,
    list_suspects,
    push_confirmed,
    push_to_suspects,
    review_queue,
    set_category,
    set_note,
    undo_last,
)
from skysieve.workspace import Workspace


def test_categories_are_the_six_kinds_of_the_work_plan() -> None:
    assert [c.number for c in SUSPECT_CATEGORIES] == [1, 2, 3, 4, 5, 6]
    codes = [c.code for c in SUSPECT_CATEGORIES]
    assert len(set(codes)) == 6 and all(c.isidentifier() for c in codes)
    zh = " ".join(c.zh for c in SUSPECT_CATEGORIES)
    for words in ("超范围", "非化工", "无证无照", "厂中厂", "已责令关闭", "新材料"):
        assert words in zh
    assert all(c.en and c.measures for c in SUSPECT_CATEGORIES)


def test_queue_orders_by_priority_then_score_and_filters(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 10, y0 + 10, priority=0.5, score=0.9)
    detection_factory("d2", x0 + 20, y0 + 10, priority=2.0, score=0.4, cls="chimney", site_id="F001")
    detection_factory("d3", x0 + 30, y0 + 10, priority=2.0, score=0.7)
    detection_factory("d4", x0 + 260, y0 + 10, priority=None, score=0.99, cls="drum_stockpile")
    assert [r["det_id"] for r in review_queue(ws)] == ["d3", "d2", "d1", "d4"]
    assert [r["det_id"] for r in review_queue(ws, survey["b"])] == ["d4"]
    assert [r["det_id"] for r in review_queue(ws, classes=["chimney", "drum_stockpile"])] == ["d2", "d4"]
    assert [r["det_id"] for r in review_queue(ws, min_score=0.7)] == ["d3", "d1", "d4"]
    assert [r["det_id"] for r in review_queue(ws, site_id="F001")] == ["d2"]
    decide(ws, "d3", "rejected", "li")
    assert [r["det_id"] for r in review_queue(ws, statuses=["pending"])] == ["d2", "d1", "d4"]
    assert review_queue(ws, classes=[]) == []
    assert review_queue(ws)[0]["geometry"].area == pytest.approx(16.0)
    with pytest.raises(LedgerError, match="unknown review status"):
        review_queue(ws, statuses=["done"])


def test_empty_workspace_has_an_empty_queue(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    assert review_queue(ws) == []
    assert undo_last(ws, "li") is None


def test_decide_updates_row_and_appends_decision_and_audit(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 10, y0 + 10)
    row = decide(ws, "d1", "confirmed", "李明", note="蓝色储罐 = two tanks", category="unlicensed_workshop")
    assert row["review_status"] == "confirmed" and row["reviewed_by"] == "李明"
    assert row["reviewed_at"].endswith("Z") and row["reviewed_at"].startswith("20")
    assert row["note"] == "蓝色储罐 = two tanks" and row["category"] == "unlicensed_workshop"
    decs = ws.gpkg.select("decisions")
    assert [(d["old_status"], d["new_status"], d["reviewer"], d["kind"]) for d in decs] == \
        [("pending", "confirmed", "李明", "decide")]
    trail = audit_trail(ws, "detection", "d1")
    assert [(a["action"], a["old_value"], a["new_value"]) for a in trail] == [
        ("decide", "pending", "confirmed"), ("note", None, "蓝色储罐 = two tanks"),
        ("category", None, "unlicensed_workshop")]
    assert all(a["who"] == "李明" and a["at"] == row["reviewed_at"] for a in trail)
    # a later decision without note/category keeps them
    row = decide(ws, "d1", "unsure", "王芳")
    assert row["note"] == "蓝色储罐 = two tanks" and row["category"] == "unlicensed_workshop"
    assert audit_trail(ws, "detection", "d1")[-1]["old_value"] == "confirmed"


@pytest.mark.parametrize(("args", "error", "match"), [
    (("nope", "confirmed", "li"), NotFoundError, "no detection 'nope'"),
    (("d1", "approved", "li"), LedgerError, "unknown review status"),
    (("d1", "confirmed", "  "), LedgerError, "reviewer name is required"),
])
def test_decide_refuses_bad_input_and_changes_nothing(survey, detection_factory, args, error, match) -> None:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 10, survey["y0"] + 10)
    with pytest.raises(error, match=match):
        decide(ws, *args)
    assert get_detection(ws, "d1")["review_status"] == "pending"
    assert audit_trail(ws) == []


def test_unknown_category_is_refused(survey, detection_factory) -> None:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 10, survey["y0"] + 10)
    with pytest.raises(LedgerError, match="unknown suspect category 'bad'.*over_scope"):
        decide(ws, "d1", "confirmed", "li", category="bad")
    with pytest.raises(LedgerError):
        set_category(ws, "d1", "bad", "li")
    assert get_detection(ws, "d1")["review_status"] == "pending"


def test_undo_walks_back_the_reviewers_own_decisions(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 10, y0 + 10)
    detection_factory("d2", x0 + 20, y0 + 10)
    decide(ws, "d1", "confirmed", "li", note="tank")
    decide(ws, "d2", "rejected", "li")
    decide(ws, "d1", "rejected", "li", note="shadow", category="over_scope")
    row = undo_last(ws, "li")
    assert (row["det_id"], row["review_status"], row["note"], row["category"]) == ("d1", "confirmed", "tank", None)
    assert row["reviewed_by"] == "li"
    assert undo_last(ws, "li")["det_id"] == "d2"
    assert get_detection(ws, "d2")["review_status"] == "pending"
    assert get_detection(ws, "d2")["reviewed_by"] is None
    row = undo_last(ws, "li")
    assert (row["det_id"], row["review_status"], row["note"]) == ("d1", "pending", None)
    assert undo_last(ws, "li") is None
    undos = ws.gpkg.select("decisions", "kind='undo'")
    assert len(undos) == 3 and all(u["reviewer"] == "li" for u in undos)
    assert [a["action"] for a in audit_trail(ws, "detection", "d2")] == ["decide", "undo"]


def test_undo_skips_a_decision_another_reviewer_replaced(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 10, y0 + 10)
    detection_factory("d2", x0 + 20, y0 + 10)
    decide(ws, "d2", "confirmed", "li")
    decide(ws, "d1", "confirmed", "li")
    decide(ws, "d1", "rejected", "wang")  # wang overrules li on d1
    row = undo_last(ws, "li")  # li's d1 decision is no longer in effect: undo d2
    assert row["det_id"] == "d2" and row["review_status"] == "pending"
    assert get_detection(ws, "d1")["review_status"] == "rejected"
    assert undo_last(ws, "li") is None
    row = undo_last(ws, "wang")
    assert row["review_status"] == "confirmed" and row["reviewed_by"] == "li"


def test_decisions_and_audit_are_append_only(survey, detection_factory) -> None:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 10, survey["y0"] + 10)
    decide(ws, "d1", "confirmed", "li")
    con = sqlite3.connect(ws.gpkg.path)  # as QGIS or a curious user would
    for sql in ("UPDATE audit SET who='x'", "DELETE FROM audit", "UPDATE decisions SET reviewer='x'",
                "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()
    assert audit_trail(ws)[0]["who"] == "li"


def test_push_joins_a_big_site_whose_outline_holds_the_spot(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 102.5, y0 + 147.5, site_id="F001")  # site F001 is 60 m x 50 m
    decide(ws, "d1", "confirmed", "li")
    [sid] = push_to_suspects(ws, "li")
    detection_factory("d2", x0 + 158, y0 + 102, candidate_id="other")  # 75 m away, inside the site
    decide(ws, "d2", "confirmed", "li")
    assert push_to_suspects(ws, "li") == [sid]
    assert get_suspect(ws, sid)["det_ids"] == ["d1", "d2"]


def test_set_note_and_category_are_audited(survey, detection_factory) -> None:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 10, survey["y0"] + 10)
    assert set_note(ws, "d1", 'drums, "leaking" <b>', "li")["note"] == 'drums, "leaking" <b>'
    set_note(ws, "d1", 'drums, "leaking" <b>', "li")  # unchanged: no entry
    assert set_category(ws, "d1", "closed_still_producing", "li")["category"] == "closed_still_producing"
    assert set_category(ws, "d1", None, "wang")["category"] is None
    trail = audit_trail(ws, "detection", "d1")
    assert [(a["action"], a["who"], a["old_value"], a["new_value"]) for a in trail] == [
        ("note", "li", None, 'drums, "leaking" <b>'),
        ("category", "li", None, "closed_still_producing"),
        ("category", "wang", "closed_still_producing", None)]
    with pytest.raises(NotFoundError):
        set_note(ws, "zz", "x", "li")


def test_push_groups_by_candidate_and_proximity_with_chips(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    # candidate c1 inside the known site F001 (cell A, with a mosaic): two tanks 20 m apart
    detection_factory("d1", x0 + 102.5, y0 + 147.5, candidate_id="c1", site_id="F001", score=0.9, priority=3.0)
    detection_factory("d2", x0 + 122.5, y0 + 130, candidate_id="c1", site_id="F001", cls="chimney", score=0.6)
    # no candidate id, two drums 12 m apart in cell B (no mosaic), one far away
    detection_factory("d3", x0 + 300, y0 + 50, cls="drum_stockpile")
    detection_factory("d4", x0 + 312, y0 + 50, cls="drum_stockpile")
    detection_factory("d5", x0 + 450, y0 + 220, cls="tank")
    detection_factory("d6", x0 + 50, y0 + 50)  # stays pending
    for d, cat in (("d1", "affiliation_rental"), ("d2", None), ("d3", None), ("d4", None), ("d5", None)):
        decide(ws, d, "confirmed", "li", category=cat)
    result = push_confirmed(ws, "li")
    assert len(result.created) == 3 and result.extended == [] and result.skipped == {}
    by_dets = {tuple(s["det_ids"]): s for s in list_suspects(ws, outlines=True)}
    assert set(by_dets) == {("d1", "d2"), ("d3", "d4"), ("d5",)}
    s1 = by_dets[("d1", "d2")]
    assert (s1["status"], s1["category"], s1["site_id"], s1["site_kind"]) == \
        ("suspected", "affiliation_rental", "F001", "idle_factory")
    assert (s1["township"], s1["village"], s1["cell_id"]) == ("丹朱镇", "东关村", survey["a"])
    assert s1["outline"].equals(survey["site"])  # the register's polygon
    assert s1["classes"] == "chimney x1, tank x1" and s1["max_score"] == 0.9 and s1["priority"] == 3.0
    lon, lat = ws.to_lonlat(s1["x"], s1["y"])
    assert (s1["lon"], s1["lat"]) == pytest.approx((lon, lat))
    assert 112.8 < s1["lon"] < 112.95 and 36.0 < s1["lat"] < 36.2
    assert len(s1["chips"]) == 2
    chip = np.asarray(Image.open(ws.root / s1["chips"][0]))
    assert chip.shape[2] == 3 and (chip[..., 0] == 250).sum() > 50  # the red tank is in d1's chip
    s2 = by_dets[("d3", "d4")]
    assert s2["township"] == "大堡头镇" and s2["chips"] == []  # cell B has no mosaic: no chip, no failure
    assert s2["outline"].contains(ws.gpkg.select("detections", "det_id='d3'")[0]["geometry"])
    for d in ("d1", "d2", "d3", "d4", "d5"):
        assert get_detection(ws, d)["suspect_id"] in {s["suspect_id"] for s in by_dets.values()}
    assert [a["action"] for a in audit_trail(ws, "suspect", s1["suspect_id"])] == ["create"]
    ext = ws.gpkg.connection().execute(
        "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name='suspects'").fetchone()
    xs, ys = [s["x"] for s in by_dets.values()], [s["y"] for s in by_dets.values()]
    assert tuple(ext) == pytest.approx((min(xs), min(ys), max(xs), max(ys)))  # QGIS zooms to the layer
    # a pushed detection's review is closed; pushing again does nothing
    with pytest.raises(LedgerError, match="evidence of suspect"):
        decide(ws, "d1", "rejected", "li")
    assert push_to_suspects(ws, "li") == []


def test_push_adds_to_an_existing_suspect_at_the_same_place(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("d1", x0 + 20, y0 + 20)
    decide(ws, "d1", "confirmed", "li")
    [sid] = push_to_suspects(ws, "li")
    detection_factory("d2", x0 + 55, y0 + 20, cls="chimney", score=0.95)  # 35 m away, next flight
    detection_factory("d3", x0 + 20, y0 + 200)  # 180 m away
    decide(ws, "d2", "confirmed", "wang")
    decide(ws, "d3", "confirmed", "wang")
    result = push_confirmed(ws, "wang", det_ids=["d2", "d3", "d1", "d9"])
    assert result.extended == [sid] and len(result.created) == 1
    assert result.skipped == {"d1": f"already evidence of suspect {sid}", "d9": "no such detection"}
    s = get_suspect(ws, sid)
    assert s["det_ids"] == ["d1", "d2"] and s["n_detections"] == 2 and s["max_score"] == 0.95
    assert s["updated_by"] == "wang"
    assert [a["action"] for a in audit_trail(ws, "suspect", sid)] == ["create", "evidence"]


def test_push_skips_unconfirmed_by_reason(survey, detection_factory) -> None:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 10, survey["y0"] + 10)
    decide(ws, "d1", "unsure", "li")
    result = push_confirmed(ws, "li", det_ids=["d1"])
    assert result.suspect_ids == [] and result.skipped["d1"] == "not confirmed (review status unsure)"
    with pytest.raises(NotFoundError):
        get_suspect(ws, "S00001")


def _analyst(root: str, who: str, det_ids: list[str], status: str) -> None:
    ws = Workspace.open(root)
    for det in det_ids:
        decide(ws, det, status, who, note=f"{who} on {det}")


def test_two_analysts_in_two_processes_lose_no_decision(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    ids = [f"d{i:02d}" for i in range(40)]
    for i, d in enumerate(ids):
        detection_factory(d, x0 + 5 + 6 * (i % 40), y0 + 5 + 100 * (i % 2))
    shared = ids[:10]  # both analysts decide these; the other 30 are split
    a_ids = shared + ids[10:25]
    b_ids = shared + ids[25:]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_analyst, args=(str(ws.root), "analyst-a", a_ids, "confirmed")),
             ctx.Process(target=_analyst, args=(str(ws.root), "analyst-b", b_ids, "rejected"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    decisions = ws.gpkg.select("decisions", order_by="fid")
    assert len(decisions) == len(a_ids) + len(b_ids)
    assert sum(d["reviewer"] == "analyst-a" for d in decisions) == len(a_ids)
    assert ws.gpkg.count("audit", "action='decide'") == len(a_ids) + len(b_ids)
    # every detection ends with the status of the last decision on it, and each chain of old -> new links up
    for det in ids:
        chain = [d for d in decisions if d["det_id"] == det]
        assert chain[0]["old_status"] == "pending"
        assert all(p["new_status"] == n["old_status"] for p, n in zip(chain, chain[1:], strict=False))
        row = get_detection(ws, det)
        assert row["review_status"] == chain[-1]["new_status"]
        assert row["reviewed_by"] == chain[-1]["reviewer"]
    push_to_suspects(ws, "analyst-a")
    pushed = [d for d in ids if get_detection(ws, d)["suspect_id"]]
    assert pushed and all(get_detection(ws, d)["review_status"] == "confirmed" for d in pushed)
    in_suspects = [d for s in list_suspects(ws) for d in s["det_ids"]]
    assert sorted(in_suspects) == sorted(pushed)  # no detection in two suspects
    assert len(pushed) == sum(get_detection(ws, d)["review_status"] == "confirmed" for d in ids)


def _pusher(root: str, who: str, spots: list[tuple[float, float]]) -> None:
    from ledger_testdata import add_detection

    ws = Workspace.open(root)
    for i, (x, y) in enumerate(spots):
        det = f"{who}-{i}"
        add_detection(ws, det, x, y)
        decide(ws, det, "confirmed", who)
        push_to_suspects(ws, who, det_ids=[det])


def test_two_analysts_pushing_the_same_places_make_one_suspect_each(survey) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    spots = [(x0 + 20 + 100 * (i % 4), y0 + 30 + 100 * (i // 4)) for i in range(8)]  # 100 m apart
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_pusher, args=(str(ws.root), "a", spots)),
             ctx.Process(target=_pusher, args=(str(ws.root), "b", [(x + 10, y) for x, y in spots]))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    suspects = list_suspects(ws)
    assert len(suspects) == 8  # each place once, whoever pushed first
    assert sorted(len(s["det_ids"]) for s in suspects) == [2] * 8
    assert sorted(d for s in suspects for d in s["det_ids"]) == sorted(f"{w}-{i}" for w in "ab" for i in range(8))

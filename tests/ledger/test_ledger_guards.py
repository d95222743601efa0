"""From a QA pass on demo workspaces: outputs never overwrite the workspace itself, plain messages for
unknown ids and refused moves, ``push --cell`` of an unknown cell, and push keeping detection's
candidate sites apart."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from skysieve.cli import main
from skysieve.detect.triage import CANDIDATE_LINK_M, triage_workspace
from skysieve.ledger import (
    PushSettings,
    assign,
    decide,
    get_suspect,
    list_suspects,
    push_confirmed,
    push_to_suspects,
    set_status,
)
from skysieve.ledger.export import DATA_FORMATS
from skysieve.workspace import Workspace


@pytest.fixture
def pushed(survey, detection_factory) -> dict:
    """The survey with one confirmed detection pushed to the list."""
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 102.5, survey["y0"] + 147.5)
    decide(ws, "d1", "confirmed", "li")
    survey["sid"] = push_to_suspects(ws, "li")[0]
    return survey


def _fingerprint(root: Path) -> dict[str, str]:
    """Every file under the workspace (but exports/) and its content hash."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "exports"}


def _refused(root: Path, argv: list[str], capsys, what: str) -> None:
    before = _fingerprint(root)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to write" in err and what in err and "Traceback" not in err
    assert _fingerprint(root) == before  # nothing written, nothing replaced
    ws = Workspace.open(root)  # still a working workspace
    assert len(list_suspects(ws)) == 1


@pytest.mark.parametrize("fmt", DATA_FORMATS)
@pytest.mark.parametrize("target, what", [("survey.gpkg", "database"), ("skysieve.toml", "settings"),
                                          ("survey.gpkg-wal", "database")])
def test_export_refuses_the_workspace_files(pushed, capsys, fmt, target, what) -> None:
    root = pushed["ws"].root
    _refused(root, ["suspects", str(root), "export", "-f", fmt, str(root / target)], capsys, what)


@pytest.mark.parametrize("rel", ["cells/{a}/ortho.tif", "cells/{a}/suspects.csv", "flights/f1/new/suspects.csv",
                                 "chips/x.csv", "cells"])
def test_export_refuses_the_internal_folders(pushed, capsys, rel) -> None:
    root = pushed["ws"].root
    (root / "flights" / "f1").mkdir()
    target = root / rel.format(a=pushed["a"])
    _refused(root, ["suspects", str(root), "export", "-f", "csv", str(target)], capsys, rel.split("/")[0] + "/")
    assert not (root / "flights" / "f1" / "new").exists()


def test_refusal_sees_through_relative_paths_and_links(pushed, capsys, tmp_path, monkeypatch) -> None:
    root = pushed["ws"].root
    monkeypatch.chdir(root / "exports")
    _refused(root, ["suspects", "..", "export", "-f", "geojson", "../exports/../survey.gpkg"], capsys, "database")
    link = tmp_path / "link.gpkg"
    link.symlink_to(root / "survey.gpkg")
    _refused(root, ["suspects", str(root), "export", "-f", "gpkg", str(link)], capsys, "database")
    hard = tmp_path / "settings.csv"
    os.link(root / "skysieve.toml", hard)
    _refused(root, ["suspects", str(root), "export", "-f", "csv", str(hard)], capsys, "settings")
    cells_link = tmp_path / "cells-link"
    cells_link.symlink_to(root / "cells", target_is_directory=True)
    _refused(root, ["suspects", str(root), "export", "-f", "kml", str(cells_link / "x.kml")], capsys, "cells/")
    _refused(root, ["report", str(root), "--out", str(cells_link / "report")], capsys, "cells/")
    photo = tmp_path / "uploads" / "DJI_0001.JPG"  # an uploaded photo, linked from flights/
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8 a photo")
    (root / "flights" / "f1").mkdir()
    (root / "flights" / "f1" / "DJI_0001.JPG").symlink_to(photo)
    _refused(root, ["suspects", str(root), "export", "-f", "csv", str(root / "flights" / "f1" / "DJI_0001.JPG")],
             capsys, "flights/")
    assert photo.read_bytes() == b"\xff\xd8 a photo"


@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_dispatch_sheets_and_report_refuse_internal_folders(pushed, capsys, fmt) -> None:
    ws, sid = pushed["ws"], pushed["sid"]
    assign(ws, sid, "一组", "li")
    root = ws.root
    for folder in ("cells", f"cells/{pushed['a']}", "flights/f2", "chips"):
        _refused(root, ["suspects", str(root), "export", "-f", fmt, str(root / folder)], capsys, "folder")
    assert not (root / "flights" / "f2").exists()
    if fmt == "html":
        for folder in ("cells", "flights/rep"):
            _refused(root, ["report", str(root), "--out", str(root / folder)], capsys, "report")


def test_exports_folder_and_elsewhere_still_work(pushed, capsys, tmp_path) -> None:
    root = pushed["ws"].root
    assert main(["suspects", str(root), "export", "-f", "geojson", str(root / "exports" / "s.geojson")]) == 0
    assert main(["suspects", str(root), "export", "-f", "csv", str(tmp_path / "s.csv")]) == 0
    assert main(["suspects", str(root), "export", "-f", "html", str(root / "exports" / "sheets")]) == 0
    assert main(["report", str(root)]) == 0
    assert (root / "exports" / "s.geojson").exists() and (tmp_path / "s.csv").exists()
    assert (root / "exports" / "report" / "report.html").exists()


def test_show_unknown_suspect_is_plain_with_a_hint(pushed, capsys) -> None:
    root = str(pushed["ws"].root)
    assert main(["suspects", root, "show", "S99999"]) == 2  # an id the command named: a usage error
    err = capsys.readouterr().err.strip()
    assert err == (f"skysieve: error: no suspect 'S99999' in this workspace "
                   f"(list them with `skysieve suspects {root} list`)")


@pytest.mark.parametrize("steps, new, why", [
    ((), "verified_illegal", "assign it to a team first"),
    ((), "disposed", "verified on site before it is disposed of"),
    ((), "suspected", "it is already suspected"),
    (("assign",), "closed", "verified on site before it is disposed of"),
    (("assign", "verified_illegal"), "closed", "disposed of before it is closed"),
    (("assign", "verified_illegal"), "verified_cleared", "verified on site already"),
    (("assign", "verified_cleared"), "disposed", "nothing to dispose of"),
    (("assign", "verified_illegal"), "dispatched", None),
])
def test_refused_moves_say_why_and_where_to(pushed, capsys, steps, new, why) -> None:
    ws, sid = pushed["ws"], pushed["sid"]
    for step in steps:
        assign(ws, sid, "一组", "li") if step == "assign" else set_status(ws, sid, step, "li")
    old = get_suspect(ws, sid)["status"]
    assert main(["suspects", str(ws.root), "set-status", sid, new, "--by", "li"]) == 1
    err = capsys.readouterr().err
    assert f"cannot go from {old} to {new}" in err
    assert f"from {old} it can go to: " in err
    if why is None:
        assert f"to {new} (from {old}" in err  # no reason that does not apply
    else:
        assert why in err
    if (old, new) not in (("suspected", "disposed"), ("dispatched", "closed")):
        assert "verified on site before it is disposed" not in err
    if old == "suspected":
        assert f"dispatched (`assign {sid} TEAM`)" in err


def test_push_unknown_cell_is_an_error(survey, detection_factory, capsys) -> None:
    ws, root = survey["ws"], str(survey["ws"].root)
    detection_factory("d1", survey["x0"] + 20, survey["y0"] + 20)
    decide(ws, "d1", "confirmed", "li")
    assert main(["suspects", root, "push", "--by", "li", "--cell", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "no cell 'NOPE' in this workspace" in err and '"' not in err
    assert list_suspects(ws) == []
    assert main(["suspects", root, "push", "--by", "li", "--cell", survey["a"]]) == 0
    assert "1 suspects created" in capsys.readouterr().out


def test_push_groups_loose_detections_as_detection_does() -> None:
    assert PushSettings().group_radius_m == PushSettings().merge_radius_m == CANDIDATE_LINK_M


def _tank_and_drums(survey, detection_factory) -> tuple[Workspace, float, float]:
    """A tank and a drum pile 48 m apart (cell A), grouped by the detector's own triage."""
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    detection_factory("tank", x0 + 20, y0 + 20)
    detection_factory("drums", x0 + 68, y0 + 20, cls="drum_stockpile")
    triage_workspace(ws)
    return ws, x0, y0


@pytest.mark.parametrize("in_steps", [False, True])
@pytest.mark.parametrize("merge_m", [None, 60.0])  # a wider merge radius still keeps detection's sites apart
def test_push_keeps_two_candidate_sites_48m_apart_as_two_suspects(survey, detection_factory, in_steps,
                                                                  merge_m) -> None:
    ws, x0, y0 = _tank_and_drums(survey, detection_factory)
    cands = {d["det_id"]: d["candidate_id"] for d in ws.gpkg.select("detections")}
    assert cands["tank"] != cands["drums"]  # detection's triage: two candidate sites
    for d in ("tank", "drums"):
        decide(ws, d, "confirmed", "li")
    s = PushSettings(merge_radius_m=merge_m) if merge_m else None
    if in_steps:
        push_confirmed(ws, "li", det_ids=["tank"], settings=s)
        result = push_confirmed(ws, "li", det_ids=["drums"], settings=s)
    else:
        result = push_confirmed(ws, "li", settings=s)
    assert result.extended == []
    spots = {tuple(s["det_ids"]): (s["x"], s["y"]) for s in list_suspects(ws)}
    assert spots == {("tank",): pytest.approx((x0 + 20, y0 + 20)), ("drums",): pytest.approx((x0 + 68, y0 + 20))}


def test_push_joins_the_same_candidate_site_pushed_in_steps(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    # a chain: tank - chimney 35 m - drums 35 m further: one candidate site, tank and drums 70 m apart
    detection_factory("tank", x0 + 20, y0 + 20)
    detection_factory("chimney", x0 + 55, y0 + 20, cls="chimney")
    detection_factory("drums", x0 + 90, y0 + 20, cls="drum_stockpile")
    triage_workspace(ws)
    assert len({d["candidate_id"] for d in ws.gpkg.select("detections")}) == 1
    decide(ws, "tank", "confirmed", "li")
    [sid] = push_to_suspects(ws, "li")
    decide(ws, "drums", "confirmed", "li")  # the chimney stays pending
    result = push_confirmed(ws, "li")
    assert result.created == [] and result.extended == [sid]
    assert get_suspect(ws, sid)["det_ids"] == ["tank", "drums"]


def test_push_joins_a_loose_detection_to_a_candidate_site_nearby(survey, detection_factory) -> None:
    ws, x0, y0 = _tank_and_drums(survey, detection_factory)
    decide(ws, "tank", "confirmed", "li")
    [sid] = push_to_suspects(ws, "li")
    detection_factory("late", x0 + 20, y0 + 55, cls="chimney")  # not triaged yet: no candidate, 35 m away
    decide(ws, "late", "confirmed", "li")
    assert push_confirmed(ws, "li", det_ids=["late"]).extended == [sid]

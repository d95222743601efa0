"""The suspect lifecycle and its audit trail, through the library and the ``skysieve suspects`` command."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from skysieve.cli import main
from skysieve.errors import LedgerError, NotFoundError, TransitionError
from skysieve.ledger import (
    STATUSES,
    TRANSITIONS,
    assign,
    audit_trail,
    decide,
    get_suspect,
    push_to_suspects,
    set_status,
    set_suspect_category,
)
from skysieve.workspace import Workspace


@pytest.fixture
def suspect(survey, detection_factory) -> tuple[Workspace, str]:
    ws = survey["ws"]
    detection_factory("d1", survey["x0"] + 20, survey["y0"] + 20)
    decide(ws, "d1", "confirmed", "li")
    [sid] = push_to_suspects(ws, "li")
    return ws, sid


def test_transition_table_covers_every_status() -> None:
    codes = {s.code for s in STATUSES}
    assert set(TRANSITIONS) == codes
    assert all(set(nxt) <= codes for nxt in TRANSITIONS.values())


def test_full_lifecycle_is_audited(suspect) -> None:
    ws, sid = suspect
    s = assign(ws, sid, "丹朱镇一组", "zhang")
    assert (s["status"], s["team"]) == ("dispatched", "丹朱镇一组")
    set_status(ws, sid, "verified_illegal", "zhang", findings="3 tanks of solvent, no licence", note="现场核实")
    set_status(ws, sid, "disposed", "zhang", measure="stop_rectify")
    s = set_status(ws, sid, "disposed", "zhang", measure="judicial_transfer", note="移送公安")
    assert s["measures"] == ["stop_rectify", "judicial_transfer"]
    s = set_status(ws, sid, "closed", "liu")
    assert (s["status"], s["updated_by"], s["findings"]) == ("closed", "liu", "3 tanks of solvent, no licence")
    trail = audit_trail(ws, "suspect", sid)
    assert [(a["action"], a["old_value"], a["new_value"]) for a in trail if a["action"] == "status"] == [
        ("status", "suspected", "dispatched"), ("status", "dispatched", "verified_illegal"),
        ("status", "verified_illegal", "disposed"), ("status", "disposed", "disposed"), ("status", "disposed", "closed")]
    assert [a["action"] for a in trail] == ["create", "assign", "status", "status", "findings", "status", "measure",
                                           "status", "measure", "status"]
    assert all(a["at"].endswith("Z") for a in trail)
    assert [a["at"] for a in trail] == sorted(a["at"] for a in trail)


@pytest.mark.parametrize(("path", "target", "match"), [
    ((), "disposed", "cannot go from suspected to disposed.*verified on site"),
    ((), "verified_cleared", "cannot go from suspected to verified_cleared"),
    ((), "closed", "from suspected it can go to: dispatched"),
    (("assign",), "closed", "cannot go from dispatched to closed"),
    (("assign", "verified_cleared"), "disposed", "can go to: closed"),
    (("assign", "verified_illegal"), "closed", "cannot go from verified_illegal to closed"),
    ((), "archived", "unknown suspect status 'archived'"),
])
def test_illegal_transitions_are_refused_and_change_nothing(suspect, path, target, match) -> None:
    ws, sid = suspect
    for step in path:
        if step == "assign":
            assign(ws, sid, "team-1", "zhang")
        else:
            set_status(ws, sid, step, "zhang")
    before = get_suspect(ws, sid)
    n_audit = len(audit_trail(ws))
    with pytest.raises(TransitionError, match=match):
        set_status(ws, sid, target, "zhang", measure="shut_down")
    assert get_suspect(ws, sid)["status"] == before["status"]
    assert len(audit_trail(ws)) == n_audit


def test_conditions_of_some_transitions(suspect) -> None:
    ws, sid = suspect
    with pytest.raises(TransitionError, match="no field team.*assign"):
        set_status(ws, sid, "dispatched", "zhang")
    assign(ws, sid, "team-1", "zhang")
    set_status(ws, sid, "verified_illegal", "zhang")
    with pytest.raises(TransitionError, match="needs the measure"):
        set_status(ws, sid, "disposed", "zhang")
    with pytest.raises(LedgerError, match="unknown disposal measure"):
        set_status(ws, sid, "disposed", "zhang", measure="fine")
    set_status(ws, sid, "disposed", "zhang", measure="shut_down")
    set_status(ws, sid, "closed", "zhang")
    with pytest.raises(TransitionError, match="is closed"):
        assign(ws, sid, "team-2", "zhang")
    with pytest.raises(TransitionError, match="needs a note"):
        set_status(ws, sid, "suspected", "zhang")
    s = set_status(ws, sid, "suspected", "zhang", note="举报: production resumed (死灰复燃)")
    assert s["status"] == "suspected" and s["measures"] == ["shut_down"]
    with pytest.raises(LedgerError, match="name is required"):
        set_status(ws, sid, "dispatched", "")
    with pytest.raises(NotFoundError, match="no suspect 'S99999'"):
        set_status(ws, "S99999", "dispatched", "zhang")
    s = set_suspect_category(ws, sid, "closed_still_producing", "zhang")
    assert s["category"] == "closed_still_producing"
    assert audit_trail(ws, "suspect", sid)[-1]["new_value"] == "closed_still_producing"


def _field_office(root: str, who: str, ids: list[str]) -> None:
    ws = Workspace.open(root)
    for sid in ids:
        assign(ws, sid, f"team-{who}", who)
        set_status(ws, sid, "verified_cleared", who, note=f"checked by {who}")


def test_two_processes_changing_the_ledger_lose_nothing(survey, detection_factory) -> None:
    ws, x0, y0 = survey["ws"], survey["x0"], survey["y0"]
    for i in range(24):
        detection_factory(f"d{i:02d}", x0 + 5 + 60 * (i % 8), y0 + 20 + 70 * (i // 8))
        decide(ws, f"d{i:02d}", "confirmed", "li")
    ids = push_to_suspects(ws, "li")
    assert len(ids) == 24
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_field_office, args=(str(ws.root), w, ids[k::2])) for k, w in enumerate(("a", "b"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for k, sid in enumerate(ids):
        s = get_suspect(ws, sid)
        who = "ab"[k % 2]
        assert (s["status"], s["team"], s["updated_by"]) == ("verified_cleared", f"team-{who}", who)
        assert [a["action"] for a in audit_trail(ws, "suspect", sid)] == ["create", "assign", "status", "status"]


def test_cli_list_show_assign_set_status(suspect, capsys) -> None:
    ws, sid = suspect
    root = str(ws.root)
    assert main(["suspects", root, "assign", sid, "丹朱镇一组", "--by", "zhang"]) == 0
    assert "dispatched" in capsys.readouterr().out
    assert main(["suspects", root, "set-status", sid, "disposed", "--by", "zhang", "--measure", "shut_down"]) == 1
    err = capsys.readouterr().err
    assert "cannot go from dispatched to disposed" in err and "verified_illegal" in err
    assert main(["suspects", root, "set-status", sid, "verified_illegal", "--by", "zhang",
                 "--note", "tanks of solvent"]) == 0
    capsys.readouterr()
    assert main(["suspects", root, "list", "--status", "verified_illegal", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["count"] == 1 and listed["suspects"][0]["suspect_id"] == sid
    assert main(["suspects", root, "list", "--township", "大堡头镇"]) == 0
    assert "0 suspects" in capsys.readouterr().out
    assert main(["suspects", root, "show", sid]) == 0
    out = capsys.readouterr().out
    assert "dispatched -> verified_illegal" in out and "(tanks of solvent)" in out and "zhang" in out
    assert main(["suspects", root, "show", "S404"]) == 2  # an id the command named: a usage error
    assert "no suspect 'S404'" in capsys.readouterr().err

"""``demo_inputs``: the world and flight ``skysieve demo`` starts from."""

from __future__ import annotations

import json

import pytest

from skysieve.datasets import CLASSES, demo_inputs


@pytest.mark.slow
def test_demo_inputs_hold_every_class_and_a_modest_flight(tmp_path):
    d = demo_inputs(tmp_path)
    objs = json.loads(d.truth_path.read_text())["features"]
    assert {o["properties"]["class"] for o in objs} == set(CLASSES)
    sites = json.loads(d.sites_path.read_text())["features"]
    assert len(sites) >= 3 and all(s["properties"]["kind"] for s in sites)
    assert 20 <= d.flight.n_images <= 60
    assert len(list(d.flight_dir.glob("*.JPG"))) == d.flight.n_images

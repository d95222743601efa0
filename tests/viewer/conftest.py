"""Viewer test fixtures: a generated review workspace, and Qt started the way the product starts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from skysieve.viewer.sample import SampleSpec, make_review_sample
from skysieve.workspace import Workspace


@pytest.fixture(scope="session")
def qapp(qapp_args, qapp_cls, pytestconfig):
    """pytest-qt's QApplication, made by :func:`skysieve.viewer.start_qt`.

    Other areas' tests import cv2 (through ultralytics) before these run; Qt must still start.
    """
    from skysieve.viewer import start_qt

    return start_qt()


@pytest.fixture(scope="session")
def _sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review") / "sample"
    make_review_sample(root, SampleSpec(n_detections=40, seed=3))
    return root


@pytest.fixture
def review_ws(_sample_template: Path, tmp_path: Path) -> Workspace:
    """A fresh copy of the sample: 3x3 cells, the centre one with a COG mosaic, a site and 40 flags."""
    root = tmp_path / "ws"
    shutil.copytree(_sample_template, root)
    return Workspace.open(root)

"""Shared fixtures: generated data (seeded), the real data folder, and a fresh workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real-data folder from SKYSIEVE_DATA (e.g. ../shared/data); skips the test when unset."""
    value = os.environ.get("SKYSIEVE_DATA")
    if not value:
        pytest.skip("SKYSIEVE_DATA is not set (point it at a folder like ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"SKYSIEVE_DATA={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def brighton(realdata: Path) -> Path:
    """The real 18-image DJI flight (images/ and reference/model.laz)."""
    path = realdata / "flights" / "brighton-beach"
    if not (path / "images").is_dir():
        pytest.skip(f"{path} has no images/")
    return path


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYSIEVE_PROGRESS", "0")
    monkeypatch.setenv("YOLO_OFFLINE", "1")

"""The package layout keeps its promises (DESIGN.md "Layout"), checked on the source itself.

import-linter cannot see this layout (the stage folders are mapped into ``skysieve.*`` by setuptools
``package-dir``, not nested under ``skysieve/``), so the contracts are checked here from the AST:
only the viewer imports napari or Qt, and the stages ``mosaic``, ``detect`` and ``datasets`` do not import
each other (they talk through the workspace).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"mosaic": "skysieve.mosaic", "detect": "skysieve.detect", "datasets": "skysieve.datasets"}
NOT_VIEWER = ["skysieve", "mosaic", "detect", "datasets", "models", "ledger"]
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("folder", NOT_VIEWER)
def test_only_the_viewer_imports_gui_toolkits(folder: str) -> None:
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in sorted((ROOT / folder).rglob("*.py"))
                 for name in _imports(p) if name.split(".")[0] in GUI_MODULES]
    assert offenders == []


@pytest.mark.parametrize("folder", sorted(STAGES))
def test_stages_do_not_import_each_other(folder: str) -> None:
    others = [m for f, m in STAGES.items() if f != folder]
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in sorted((ROOT / folder).rglob("*.py"))
                 for name in _imports(p) if any(name == o or name.startswith(o + ".") for o in others)]
    assert offenders == []


def test_cli_lists_every_stage() -> None:
    from skysieve.cli import build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert {"init", "ingest", "mosaic", "import-ortho", "synth", "detect", "train", "evaluate", "sites",
            "suspects", "report", "review", "demo"} <= commands

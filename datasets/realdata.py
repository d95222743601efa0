"""Real labelled data in YOLO format: reading it, mapping its class names onto :data:`CLASSES`, adding it.

A real dataset is a folder with ``images/`` and ``labels/`` (any sub-folders, matched by file stem) and
its class names in ``data.yaml`` (``names``) or ``classes.txt`` (one per line). Names map by meaning:
anything with "tank" becomes ``tank``; "chimney", "stack" or "flue" ``chimney``; "drum", "barrel" or
"ibc" ``drum_stockpile``. Boxes of other classes are dropped (and counted).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from skysieve.atomic import write_text
from skysieve.datasets.scene import CLASSES
from skysieve.errors import DatasetError

__all__ = ["RealImport", "class_map", "read_names", "import_real"]

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_WORDS = {"tank": ("tank",), "chimney": ("chimney", "stack", "flue"), "drum_stockpile": ("drum", "barrel", "ibc")}


@dataclass(frozen=True)
class RealImport:
    """What :func:`import_real` added: images, boxes kept, boxes dropped (unmapped classes), files skipped."""

    images: int
    boxes: int
    dropped_boxes: int
    skipped: int


def class_map(names: list[str]) -> dict[int, int | None]:
    """Index in the real dataset -> index in :data:`CLASSES` (``None``: no counterpart)."""
    out: dict[int, int | None] = {}
    for i, name in enumerate(names):
        low = name.lower()
        out[i] = next((CLASSES.index(cls) for cls, words in _WORDS.items() if any(w in low for w in words)), None)
    return out


def read_names(folder: Path) -> list[str]:
    """Class names of a YOLO dataset from ``data.yaml`` or ``classes.txt``."""
    yaml_path, txt = folder / "data.yaml", folder / "classes.txt"
    if yaml_path.is_file():
        import yaml

        data = yaml.safe_load(yaml_path.read_text()) or {}
        names = data.get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
    if txt.is_file():
        return [line.strip() for line in txt.read_text().splitlines() if line.strip()]
    raise DatasetError("no class names (data.yaml 'names' or classes.txt)", path=folder,
                       hint="add classes.txt with one class name per line")


def import_real(real_dir: str | Path, root: Path, split: str = "train") -> RealImport:
    """Copy a real YOLO dataset into ``root/images/<split>`` and ``root/labels/<split>`` (prefix ``real_``),
    with labels remapped onto :data:`CLASSES`. An image whose label file is unreadable is skipped."""
    real = Path(real_dir)
    if not (real / "images").is_dir() or not (real / "labels").is_dir():
        raise DatasetError("not a YOLO dataset (needs images/ and labels/)", path=real,
                           hint="give the folder that holds images/ and labels/")
    mapping = class_map(read_names(real))
    if not any(v is not None for v in mapping.values()):
        raise DatasetError(f"none of its classes maps onto {', '.join(CLASSES)}", path=real)
    labels = {p.stem: p for p in (real / "labels").rglob("*.txt")}
    n_img = n_box = n_drop = n_skip = 0
    for img in sorted((real / "images").rglob("*")):
        if img.suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        lines = []
        try:
            text = labels[img.stem].read_text() if img.stem in labels else ""
            for line in text.splitlines():
                parts = line.split()
                if not parts:
                    continue
                cls = mapping.get(int(parts[0]))
                vals = [float(v) for v in parts[1:5]]
                if len(vals) != 4 or not all(0 <= v <= 1 for v in vals):
                    raise ValueError(f"bad box {line!r}")
                if cls is None:
                    n_drop += 1
                    continue
                lines.append(f"{cls} " + " ".join(parts[1:5]))
        except (ValueError, OSError) as e:
            log.warning("skipping real image %s: %s", img, e)
            n_skip += 1
            continue
        dst = root / "images" / split / f"real_{img.stem}{img.suffix.lower()}"
        shutil.copyfile(img, dst)
        write_text(root / "labels" / split / f"real_{img.stem}.txt", "\n".join(lines) + ("\n" if lines else ""))
        n_img += 1
        n_box += len(lines)
    log.info("real data %s: %d images, %d boxes (%d dropped, %d skipped)", real, n_img, n_box, n_drop, n_skip)
    return RealImport(n_img, n_box, n_drop, n_skip)

"""Workspace settings: ``skysieve.toml`` in the workspace folder.

The file has one table per stage (``[workspace]``, ``[ingest]``, ``[mosaic]``, ``[detect]``, ...).
Each stage reads its own table into its own settings dataclass with :func:`section`, so unknown or
missing keys fall back to the stage's defaults and a typo'd key is reported, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from skysieve.atomic import write_text
from skysieve.errors import WorkspaceError

__all__ = ["read_settings", "write_settings", "section", "dump_toml"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def read_settings(path: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise WorkspaceError(f"settings file is not valid TOML: {e}", path=path,
                             hint="fix the line named, or delete the file to get the defaults back") from e


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def dump_toml(data: dict[str, dict[str, Any]]) -> str:
    """TOML text for a two-level dict of tables (all skysieve settings need)."""
    lines = ["# skysieve workspace settings; each stage reads its own table. Delete a key to get its default.", ""]
    for table, values in data.items():
        lines.append(f"[{table}]")
        for k, v in values.items():
            if v is not None:
                lines.append(f"{k} = {_value(v)}")
        lines.append("")
    return "\n".join(lines)


def write_settings(path: str | Path, data: dict[str, dict[str, Any]]) -> None:
    write_text(path, dump_toml(data))


def section(data: dict[str, dict[str, Any]], name: str, cls: type[T]) -> T:
    """Build dataclass ``cls`` from table ``name``; missing keys keep their defaults."""
    table = dict(data.get(name, {}))
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - fields)
    for key in unknown:
        log.warning("skysieve.toml: unknown key [%s] %s is ignored (known: %s)", name, key, ", ".join(sorted(fields)))
        table.pop(key)
    return cls(**table)

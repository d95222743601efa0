"""The campaign report for the county office: per township and for the county, cells flown and their
coverage, flags raised and reviewed, suspects by category and status, disposals. Written as a
spreadsheet (XLSX) and one self-contained HTML page with a map (inline SVG; no map service).
"""

from __future__ import annotations

import html
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely

from skysieve.atomic import atomic_path
from skysieve.schema import DETECTIONS, IMAGES, REVIEW_STATUSES
from skysieve.workspace import Workspace

from .categories import SUSPECT_CATEGORIES
from .lifecycle import DISPOSAL_MEASURES, STATUS_BY_CODE, STATUSES
from .outputs import check_output
from .suspects import list_suspects

__all__ = ["TownshipStats", "CampaignStats", "campaign_stats", "write_report_xlsx", "write_report_html",
           "make_report", "Report", "UNNAMED_TOWNSHIP"]

log = logging.getLogger(__name__)

UNNAMED_TOWNSHIP = "(未指定乡镇 no township)"
COUNTY = "全县 County"


@dataclass
class TownshipStats:
    """Figures of one township (or of the county); coverage in percent of the cells' area."""

    township: str
    cells: int = 0
    cells_flown: int = 0
    cell_area_m2: float = 0.0
    covered_m2: float = 0.0  # by the cell mosaics (ortho.json), else by accepted photo footprints
    flags: int = 0
    reviewed: Counter = field(default_factory=Counter)  # review status -> detections
    suspects: int = 0
    by_category: Counter = field(default_factory=Counter)  # category code ('' = not yet known) -> suspects
    by_status: Counter = field(default_factory=Counter)
    measures: Counter = field(default_factory=Counter)  # disposal measure -> suspects
    disposed: int = 0  # suspects with at least one disposal measure taken

    @property
    def coverage_pct(self) -> float:
        return 100.0 * self.covered_m2 / self.cell_area_m2 if self.cell_area_m2 else 0.0

    @property
    def flags_reviewed(self) -> int:
        return self.flags - self.reviewed.get("pending", 0)

    def add(self, other: TownshipStats) -> None:
        for name in ("cells", "cells_flown", "cell_area_m2", "covered_m2", "flags", "suspects", "disposed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("reviewed", "by_category", "by_status", "measures"):
            getattr(self, name).update(getattr(other, name))


@dataclass
class CampaignStats:
    """Per-township figures, the county total, and what the map needs."""

    townships: list[TownshipStats]
    county: TownshipStats
    made_at: str
    cells: list[dict[str, Any]]  # cell_id, township, geometry, coverage_pct
    suspects: list[dict[str, Any]]


def _coverage(ws: Workspace, cells: list[Any]) -> dict[str, float]:
    """cell_id -> covered area (m^2) by footprints of accepted images (workspace CRS)."""
    if not ws.gpkg.has_layer(IMAGES.name):
        return {}
    prints = [r["geometry"] for r in ws.gpkg.select(IMAGES.name, "status='accepted'") if r["geometry"] is not None]
    if not prints:
        return {}
    tree = shapely.STRtree(prints)
    out = {}
    for c in cells:
        hits = tree.query(c.geometry, predicate="intersects")
        if len(hits):
            out[c.cell_id] = shapely.union_all([prints[i] for i in hits]).intersection(c.geometry).area
    return out


def _mosaic_covered(ws: Workspace, cell_id: str) -> float | None:
    """Fraction of the cell its mosaic covers (``cell_covered`` in ``ortho.json``), or None if unknown."""
    path = ws.cell_dir(cell_id) / "ortho.json"
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("cell_covered")
    except (OSError, ValueError, AttributeError) as e:
        log.warning("report: cannot read %s (%s); coverage from the photo footprints instead", path, e)
        return None
    return float(value) if isinstance(value, (int, float)) and 0 <= value <= 1.0001 else None


def campaign_stats(ws: Workspace) -> CampaignStats:
    """Figures of the campaign, read from the workspace (cells, images, detections, suspects)."""
    cells = ws.cells()
    covered = _coverage(ws, cells)
    town_of = {c.cell_id: c.township or UNNAMED_TOWNSHIP for c in cells}
    rows: dict[str, TownshipStats] = {}

    def row(town: str | None) -> TownshipStats:
        town = town or UNNAMED_TOWNSHIP
        return rows.setdefault(town, TownshipStats(town))

    cell_rows = []
    for c in cells:
        t = row(c.township)
        t.cells += 1
        t.cell_area_m2 += c.geometry.area
        mosaic = _mosaic_covered(ws, c.cell_id)  # what the mosaic covers, else what the photos saw
        cov = mosaic * c.geometry.area if mosaic is not None else covered.get(c.cell_id, 0.0)
        flown = cov > 0 or ws.cell_dir(c.cell_id).joinpath("ortho.tif").exists()
        t.cells_flown += int(flown)
        t.covered_m2 += cov
        cell_rows.append({"cell_id": c.cell_id, "township": t.township, "geometry": c.geometry,
                          "coverage_pct": 100.0 * cov / c.geometry.area if c.geometry.area else 0.0})
    if ws.gpkg.has_layer(DETECTIONS.name):
        for cell_id, status, n in ws.gpkg.connection().execute(
                "SELECT cell_id, review_status, COUNT(*) FROM detections GROUP BY cell_id, review_status"):
            t = row(town_of.get(cell_id))
            t.flags += n
            t.reviewed[status] += n
    suspects = list_suspects(ws)
    for s in suspects:
        t = row(s.get("township") or town_of.get(s.get("cell_id") or ""))
        t.suspects += 1
        t.by_category[s.get("category") or ""] += 1
        t.by_status[s["status"]] += 1
        t.measures.update(set(s["measures"]))
        t.disposed += int(bool(s["measures"]))
    county = TownshipStats(COUNTY)
    for t in rows.values():
        county.add(t)
    made_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return CampaignStats(sorted(rows.values(), key=lambda t: t.township), county, made_at, cell_rows, suspects)


def _columns() -> list[tuple[str, Any]]:
    """(header, getter) of the township table."""
    cols: list[tuple[str, Any]] = [
        ("乡镇 Township", lambda t: t.township), ("网格 Cells", lambda t: t.cells),
        ("已飞 Cells flown", lambda t: t.cells_flown), ("覆盖率 Coverage %", lambda t: round(t.coverage_pct, 1)),
        ("发现 Flags", lambda t: t.flags), ("已审 Reviewed", lambda t: t.flags_reviewed)]
    cols += [(f"审核 {s}", lambda t, s=s: t.reviewed.get(s, 0)) for s in REVIEW_STATUSES if s != "pending"]
    cols.append(("疑似点 Suspects", lambda t: t.suspects))
    cols += [(f"({c.number}) {c.zh}", lambda t, c=c: t.by_category.get(c.code, 0)) for c in SUSPECT_CATEGORIES]
    cols.append(("类别未定 Category unknown", lambda t: t.by_category.get("", 0)))
    cols += [(f"{s.zh} {s.code}", lambda t, s=s: t.by_status.get(s.code, 0)) for s in STATUSES]
    cols.append(("已处置 Disposed of", lambda t: t.disposed))
    cols += [(m.zh, lambda t, m=m: t.measures.get(m.code, 0)) for m in DISPOSAL_MEASURES]
    return cols


_SUSPECT_COLS = ("suspect_id", "township", "village", "cell_id", "category", "status", "measures", "team",
                 "classes", "n_detections", "max_score", "lon", "lat", "site_name", "created_at", "updated_at")


def write_report_xlsx(stats: CampaignStats, out: Path) -> Path:
    """Spreadsheet: townships + county total, the suspect list, and the legend of codes."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "乡镇汇总 Townships"
    cols = _columns()
    ws.append([h for h, _ in cols])
    for t in stats.townships:
        ws.append([g(t) for _, g in cols])
    ws.append([g(stats.county) for _, g in cols])
    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
    for cell in ws[ws.max_row]:
        cell.font = bold
    ws.freeze_panes = "B2"
    ws.column_dimensions["A"].width = 22
    sl = wb.create_sheet("疑似点 Suspects")
    sl.append(list(_SUSPECT_COLS))
    for s in stats.suspects:
        sl.append([",".join(s[c]) if c == "measures" else s.get(c) for c in _SUSPECT_COLS])
    for cell in sl[1]:
        cell.font = bold
    sl.freeze_panes = "B2"
    lg = wb.create_sheet("代码 Codes")
    lg.append(["kind", "code", "中文", "English"])
    for c in SUSPECT_CATEGORIES:
        lg.append(["category", c.code, c.zh, c.en])
    for st in STATUSES:
        lg.append(["status", st.code, st.zh, st.en])
    for m in DISPOSAL_MEASURES:
        lg.append(["measure", m.code, m.zh, m.en])
    lg.append(["made", stats.made_at, "", ""])
    with atomic_path(out, suffix=".xlsx") as tmp:
        wb.save(tmp)
    return out


def _svg_map(stats: CampaignStats, width: int = 760) -> str:
    """Cells shaded by coverage, suspects as dots coloured by status (workspace CRS, north up)."""
    shapes = [c["geometry"] for c in stats.cells]
    points = [(s["x"], s["y"], s["status"], s["suspect_id"]) for s in stats.suspects if s.get("x") is not None]
    if not shapes and not points:
        return "<p>(no cells or suspects to map)</p>"
    xs = [b for g in shapes for b in (g.bounds[0], g.bounds[2])] + [p[0] for p in points]
    ys = [b for g in shapes for b in (g.bounds[1], g.bounds[3])] + [p[1] for p in points]
    minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
    span = max(maxx - minx, maxy - miny, 1.0)
    k = (width - 20) / span
    height = int((maxy - miny) * k) + 20

    def p(x: float, y: float) -> str:
        return f"{10 + (x - minx) * k:.1f},{10 + (maxy - y) * k:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" style="background:#f4f4f4">']
    for c in stats.cells:
        g = c["geometry"]
        if g.geom_type != "Polygon":
            continue
        shade = int(235 - 1.4 * min(c["coverage_pct"], 100))
        title = html.escape(f"{c['cell_id']} {c['township']}: {c['coverage_pct']:.0f}%")
        parts.append(f'<polygon points="{" ".join(p(x, y) for x, y in g.exterior.coords)}" '
                     f'fill="rgb({shade},{shade + 10 if shade < 245 else 255},{shade})" stroke="#888" '
                     f'stroke-width="0.5"><title>{title}</title></polygon>')
    for x, y, status, sid in points:
        col = STATUS_BY_CODE[status].colour if status in STATUS_BY_CODE else "#000"
        cx, cy = p(x, y).split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{col}" stroke="#000" stroke-width="0.7">'
                     f"<title>{html.escape(sid)} {html.escape(status)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def write_report_html(stats: CampaignStats, out: Path, title: str = "小化工专项整治 无人机排查报告") -> Path:
    """One self-contained HTML page: headline figures, the township table, the map, the legend."""
    e = html.escape
    cols = _columns()
    head = "".join(f"<th>{e(h)}</th>" for h, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(str(g(t)))}</td>" for _, g in cols) + "</tr>"
                   for t in stats.townships)
    body += '<tr class="total">' + "".join(f"<td>{e(str(g(stats.county)))}</td>" for _, g in cols) + "</tr>"
    c = stats.county
    legend = "".join(f'<span class="dot" style="background:{s.colour}"></span>{e(s.zh)} {e(s.en)} &nbsp; '
                     for s in STATUSES)
    page = f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{e(title)}</title><style>
body{{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:16px;color:#111}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #bbb;padding:3px 6px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} th{{background:#eee}} tr.total td{{font-weight:bold}}
.dot{{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px;border:1px solid #000}}
.figures span{{display:inline-block;margin-right:24px;font-size:15px}}
</style></head><body><h1>{e(title)}</h1><p>{e(stats.made_at)} · skysieve</p>
<div class="figures"><span>网格 cells flown: <b>{c.cells_flown}/{c.cells}</b></span>
<span>覆盖率 coverage: <b>{c.coverage_pct:.1f}%</b></span><span>发现 flags: <b>{c.flags}</b>
(已审 reviewed {c.flags_reviewed})</span><span>疑似点 suspects: <b>{c.suspects}</b></span>
<span>已处置 disposed of: <b>{c.disposed}</b></span></div>
<h2>地图 Map</h2><p>{legend}</p>{_svg_map(stats)}
<h2>乡镇汇总 By township</h2><table><tr>{head}</tr>{body}</table>
</body></html>
"""
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


@dataclass(frozen=True)
class Report:
    """A written report: its figures and files."""

    stats: CampaignStats
    xlsx: Path
    html: Path


def make_report(ws: Workspace, out_dir: str | Path | None = None) -> Report:
    """Compute the figures and write ``report.xlsx`` and ``report.html`` (default: ``exports/report/``)."""
    out = Path(out_dir) if out_dir is not None else ws.exports_dir / "report"
    for target in (out, out / "report.xlsx", out / "report.html"):  # never over the workspace's own files
        check_output(ws, target, "report")
    out.mkdir(parents=True, exist_ok=True)
    stats = campaign_stats(ws)
    report = Report(stats, write_report_xlsx(stats, out / "report.xlsx"), write_report_html(stats, out / "report.html"))
    log.info("campaign report: %d townships, %d suspects -> %s", len(stats.townships), stats.county.suspects, out)
    return report

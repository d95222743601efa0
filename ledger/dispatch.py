"""Printable dispatch sheets (派发核查单), one per field team, as HTML and PDF.

For each suspect: a map chip cut from the cell mosaics with the spot marked (and the site outline),
the coordinates in WGS 84 and GCJ-02, a QR code that opens Amap navigation to the spot, the
evidence chips, and boxes for the team's findings. The HTML is one self-contained file (images
inlined) that prints one suspect per page; the PDF is drawn with matplotlib (its PDF backend, no pyplot) using a CJK font
found on the system (Debian: ``fonts-wqy-microhei`` or ``fonts-noto-cjk``).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from shapely.geometry import box

from skysieve.atomic import atomic_path
from skysieve.errors import ExportError
from skysieve.grid import Cell
from skysieve.progress import progress
from skysieve.workspace import Workspace

from .chips import ortho_path, read_patch
from .records import FieldRecord, amap_navigation_uri

__all__ = ["SheetSettings", "map_chip", "qr_png", "write_dispatch_html", "write_dispatch_pdf", "team_sheets",
           "find_cjk_font", "sheet_name", "CJK_FONT_PACKAGES"]

log = logging.getLogger(__name__)

#: Debian packages that provide a CJK font the PDF sheets can embed (first is preferred)
CJK_FONT_PACKAGES = ("fonts-wqy-microhei", "fonts-wqy-zenhei", "fonts-noto-cjk")
_CJK_FONT_NAMES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Serif CJK SC",
                   "Source Han Sans SC", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN")


@dataclass(frozen=True)
class SheetSettings:
    """Map chip size (metres of ground, pixels) and how many evidence chips a sheet shows."""

    map_side_m: float = 160.0
    map_px: int = 420
    max_evidence: int = 4


def _team_file(team: str) -> str:
    return re.sub(r"[^\w.-]+", "_", team).strip("._-") or "team"


def team_sheets(records: Sequence[FieldRecord]) -> dict[str, list[FieldRecord]]:
    """Records grouped by team (unassigned ones under ``未分配``), teams sorted."""
    out: dict[str, list[FieldRecord]] = {}
    for r in records:
        out.setdefault(r.team or "未分配", []).append(r)
    return dict(sorted(out.items()))


def map_chip(ws: Workspace, r: FieldRecord, s: SheetSettings = SheetSettings(),
             cells: Sequence[Cell] | None = None) -> np.ndarray:
    """RGB uint8 chip (map_px square) around the spot, north up, spot and outline marked, 50 m bar.

    Composited from the mosaics of every cell (of ``cells``, default all) the chip overlaps; grey
    where no mosaic exists.
    """
    half = s.map_side_m / 2
    bounds = (r.x - half, r.y - half, r.x + half, r.y + half)
    canvas = np.full((s.map_px, s.map_px, 3), 200, np.uint8)
    area = box(*bounds)
    for cell in (c for c in (ws.cells() if cells is None else cells) if c.geometry.intersects(area)):
        try:
            patch = read_patch(ortho_path(ws, cell.cell_id), bounds, s.map_px)
        except Exception as e:  # a damaged mosaic only costs its part of the picture
            log.warning("map chip for %s: cannot read the mosaic of %s (%s)", r.suspect_id, cell.cell_id, e)
            continue
        if patch is None:
            continue
        if patch.shape[:2] != canvas.shape[:2]:
            patch = np.asarray(Image.fromarray(patch).resize((s.map_px, s.map_px), Image.BILINEAR))
        has = patch.any(axis=2)
        canvas[has] = patch[has]
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    scale = s.map_px / s.map_side_m  # px per metre

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - bounds[0]) * scale, (bounds[3] - y) * scale

    if r.outline is not None and r.outline.geom_type == "Polygon":
        xs, ys = ws.from_lonlat(*np.asarray(r.outline.exterior.coords).T)
        draw.line([px(x, y) for x, y in zip(xs, ys, strict=True)], fill=(255, 255, 0), width=2)
    cx, cy = px(r.x, r.y)
    for rad, col in ((14, (255, 255, 255)), (12, (230, 0, 0))):
        draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=col, width=3)
    draw.line([cx - 20, cy, cx - 8, cy], fill=(230, 0, 0), width=2)
    draw.line([cx + 8, cy, cx + 20, cy], fill=(230, 0, 0), width=2)
    bar = 50 * scale
    y0 = s.map_px - 16
    draw.rectangle([10, y0 - 4, 10 + bar, y0 + 2], fill=(255, 255, 255), outline=(0, 0, 0))
    draw.text((14 + bar, y0 - 10), "50 m", fill=(255, 255, 255))
    draw.text((s.map_px - 22, 8), "N ^", fill=(255, 255, 255))
    return np.asarray(img)


def qr_png(text: str, box_size: int = 4) -> bytes:
    """A QR code (PNG bytes) encoding ``text``."""
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=2)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return buf.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_CSS = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#111}
.sheet{page-break-after:always;padding:12mm;max-width:190mm}
h1{font-size:18pt;margin:0 0 4mm} h2{font-size:12pt;margin:4mm 0 2mm}
table.info td{padding:1mm 3mm;border-bottom:1px solid #ccc;vertical-align:top;font-size:10pt}
.row{display:flex;gap:6mm;align-items:flex-start} .map{width:100mm} .qr{width:32mm}
.ev img{width:42mm;margin-right:2mm;border:1px solid #999}
.box{border:1px solid #333;min-height:14mm;margin-bottom:2mm;padding:1mm 2mm;font-size:9pt;color:#555}
.small{font-size:8pt;color:#555}
"""


def _info_rows(r: FieldRecord) -> list[tuple[str, str]]:
    return [("编号 ID", r.suspect_id), ("类别 Category", r.category_label), ("状态 Status", r.status_label),
            ("位置 Place", f"{r.township} {r.village} (网格 {r.cell_id})"), ("场所 Site", r.site_name),
            ("证据 Evidence", f"{r.classes} (共 {r.n_detections} 处, 最高分 max score {r.max_score or 0:.2f})"),
            ("WGS 84 (GPS)", f"{r.lat:.6f} N, {r.lon:.6f} E"),
            ("GCJ-02 (高德/腾讯)", f"{r.gcj_lat:.6f} N, {r.gcj_lon:.6f} E"),
            ("BD-09 (百度)", f"{r.bd_lat:.6f} N, {r.bd_lon:.6f} E"), ("备注 Note", r.note)]


def write_dispatch_html(ws: Workspace, team: str, records: Sequence[FieldRecord], out: Path,
                        s: SheetSettings = SheetSettings()) -> Path:
    """One self-contained HTML dispatch sheet for ``team`` (a page per suspect)."""
    e = html.escape
    cells = ws.cells()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = ['<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>派发核查单 Dispatch sheet: {e(team)}</title><style>{_CSS}</style></head><body>"]
    for i, r in enumerate(progress(records, f"{team}: HTML sheet", total=len(records)), 1):
        uri = amap_navigation_uri(r)
        rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _info_rows(r) if v.strip())
        chips = "".join(f'<img src="{_data_uri(p.read_bytes())}" alt="{e(p.name)}">' for p in r.chips[:s.max_evidence])
        parts.append(
            f'<section class="sheet"><h1>{e(r.suspect_id)} · {e(team)} <span class="small">({i}/{len(records)},'
            f" {e(now)})</span></h1>"
            f'<div class="row"><img class="map" src="{_data_uri(_png(map_chip(ws, r, s, cells)))}" alt="map">'
            f'<div><table class="info">{rows}</table>'
            f'<p><img class="qr" src="{_data_uri(qr_png(uri))}" alt="QR"><br>'
            f'<span class="small">扫码导航 (高德) Scan to navigate:<br><a href="{e(uri)}">{e(uri)}</a></span></p>'
            f"</div></div><h2>证据 Evidence</h2><div class=\"ev\">{chips or '(无影像 no chips)'}</div>"
            "<h2>现场核查情况 Findings on site</h2>"
            '<div class="box">核查结论 Result: □ 属实(违法) illegal &nbsp; □ 排除 cleared</div>'
            '<div class="box">现场情况 What was found:</div>'
            '<div class="box">处置措施 Measures: □ 停产整顿 □ 拆除设备 □ 关闭取缔 □ 移送公安/司法</div>'
            '<div class="box">核查人 / 日期 Checked by / date:</div></section>')
    parts.append("</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return out


def find_cjk_font() -> Path:
    """A font file on this system that renders Chinese; :class:`ExportError` saying what to install if none."""
    from matplotlib import font_manager

    by_name = {f.name: Path(f.fname) for f in font_manager.fontManager.ttflist}
    for name in _CJK_FONT_NAMES:
        if name in by_name:
            return by_name[name]
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if folder.is_dir():
            for pattern in ("wqy-microhei*.tt[cf]", "wqy-zenhei*.tt[cf]", "NotoSansCJK*", "*CJK*"):
                hits = sorted(folder.rglob(pattern))
                if hits:
                    return hits[0]
    raise ExportError("no font that renders Chinese is installed, so the PDF sheet cannot be drawn",
                      hint="install one, e.g. `apt-get install fonts-wqy-microhei`, or export --format html")


def _sheet_figure(ws: Workspace, team: str, r: FieldRecord, i: int, n: int, fp, cells: Sequence[Cell],
                  s: SheetSettings, now: str):
    """One A4 matplotlib figure for suspect ``r`` (page ``i`` of ``n``); no pyplot, so no global backend state."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(8.27, 11.69))  # A4, inches
    fig.text(0.06, 0.955, f"派发核查单 {r.suspect_id} · {team}", fontproperties=fp, fontsize=16)
    fig.text(0.06, 0.94, f"{i}/{n} · {now}", fontproperties=fp, fontsize=8, color="#555")
    ax = fig.add_axes((0.06, 0.56, 0.44, 0.37))
    ax.imshow(map_chip(ws, r, s, cells))
    ax.set_axis_off()
    y = 0.925
    for k, v in _info_rows(r):
        if not v.strip():
            continue
        lines = textwrap.wrap(v, 44)[:2]
        fig.text(0.53, y, k, fontproperties=fp, fontsize=7, color="#555")
        fig.text(0.53, y - 0.012 * len(lines), "\n".join(lines), fontproperties=fp, fontsize=8.5)
        y -= 0.029 + 0.012 * (len(lines) - 1)
    fig.text(0.06, 0.535, "证据 Evidence", fontproperties=fp, fontsize=11)
    for j, chip in enumerate(r.chips[:min(3, s.max_evidence)]):  # the fourth slot holds the QR code
        ea = fig.add_axes((0.06 + j * 0.225, 0.36, 0.21, 0.165))
        ea.imshow(np.asarray(Image.open(chip).convert("RGB")))
        ea.set_axis_off()
    qa = fig.add_axes((0.76, 0.395, 0.13, 0.13))
    qa.imshow(np.asarray(Image.open(io.BytesIO(qr_png(amap_navigation_uri(r)))).convert("RGB")))
    qa.set_axis_off()
    fig.text(0.76, 0.365, "扫码导航 (高德)\nScan to navigate (Amap)", fontproperties=fp, fontsize=8)
    if not r.chips:
        fig.text(0.06, 0.50, "(无影像 no chips)", fontproperties=fp, fontsize=9, color="#555")
    fig.text(0.06, 0.33, "现场核查情况 Findings on site", fontproperties=fp, fontsize=11)
    boxes = ("核查结论 Result: □ 属实(违法) illegal   □ 排除 cleared", "现场情况 What was found:",
             "处置措施 Measures: □ 停产整顿 □ 拆除设备 □ 关闭取缔 □ 移送公安/司法", "核查人 / 日期 Checked by / date:")
    for j, label in enumerate(boxes):
        top = 0.31 - j * 0.07
        fig.add_artist(Rectangle((0.06, top - 0.06), 0.88, 0.06, fill=False, lw=0.8, transform=fig.transFigure))
        fig.text(0.07, top - 0.015, label, fontproperties=fp, fontsize=9, color="#333")
    return fig


def write_dispatch_pdf(ws: Workspace, team: str, records: Sequence[FieldRecord], out: Path,
                       s: SheetSettings = SheetSettings()) -> Path:
    """One PDF dispatch sheet for ``team``: an A4 page per suspect, Chinese text in an embedded CJK font."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.backends.backend_pdf import PdfPages

    font_path = find_cjk_font()
    font_manager.fontManager.addfont(str(font_path))
    fp = font_manager.FontProperties(fname=str(font_path))
    cells = ws.cells()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with atomic_path(out, suffix=".pdf") as tmp, matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(tmp) as pdf:
        info = pdf.infodict()
        info["Title"] = f"Dispatch sheet {team}"
        info["Creator"] = "skysieve"
        for i, r in enumerate(progress(records, f"{team}: PDF sheet", total=len(records)), 1):
            pdf.savefig(_sheet_figure(ws, team, r, i, len(records), fp, cells, s, now))
    return out


def sheet_name(team: str, fmt: str) -> str:
    """File name of a team's sheet, e.g. ``dispatch-丹朱镇一组.html``."""
    return f"dispatch-{_team_file(team)}.{fmt}"

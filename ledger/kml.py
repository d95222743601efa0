"""KML and KMZ of the suspect list: placemarks styled by status, outlines, evidence chips in the KMZ.

KML holds WGS 84 lon/lat (what Google Earth, 奥维互动地图 / Ovital and most phone GIS apps read).
Text is XML-escaped; the description is HTML (values HTML-escaped) in a CDATA section.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from skysieve.atomic import atomic_path

from .field_formats import xml_attr, xml_cdata, xml_text
from .lifecycle import STATUSES
from .records import FieldRecord

__all__ = ["kml_document", "write_kml", "write_kmz", "KML_NS"]

KML_NS = "http://www.opengis.net/kml/2.2"


def _abgr(hex_rgb: str, alpha: str = "ff") -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"{alpha}{b}{g}{r}"


def _styles() -> str:
    out = []
    for s in STATUSES:
        out.append(f'<Style id="status-{s.code}"><IconStyle><color>{_abgr(s.colour)}</color><scale>1.2</scale>'
                   f"</IconStyle><LabelStyle><scale>0.8</scale></LabelStyle><LineStyle><color>{_abgr(s.colour)}"
                   f"</color><width>2</width></LineStyle><PolyStyle><color>{_abgr(s.colour, '40')}</color>"
                   "</PolyStyle></Style>")
    return "".join(out)


_HTML_SPECIAL = re.compile('[&<>"]')


def _html_escape(text: str) -> str:
    if not _HTML_SPECIAL.search(text):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _description(r: FieldRecord, chip_hrefs: Sequence[str]) -> str:
    rows = [("类别 Category", r.category_label), ("状态 Status", r.status_label), ("证据 Evidence", r.classes),
            ("乡镇/村 Township/village", f"{r.township} {r.village}"), ("网格 Cell", r.cell_id),
            ("场所 Site", r.site_name), ("队伍 Team", r.team), ("WGS 84", f"{r.lon:.6f}, {r.lat:.6f}"),
            ("GCJ-02 (高德)", f"{r.gcj_lon:.6f}, {r.gcj_lat:.6f}"), ("备注 Note", r.note)]
    html = "<table>" + "".join(f"<tr><td>{_html_escape(k)}</td><td>{_html_escape(v)}</td></tr>"
                               for k, v in rows if v.strip()) + "</table>"
    html += "".join(f'<img src="{_html_escape(h)}" width="200"/>' for h in chip_hrefs)
    return html


def _coords(ring) -> str:
    return " ".join(f"{x:.7f},{y:.7f},0" for x, y in ring.coords)


def _geometry(r: FieldRecord) -> str:
    point = f"<Point><coordinates>{r.lon:.7f},{r.lat:.7f},0</coordinates></Point>"
    outline = r.outline
    if outline is None or outline.is_empty or outline.geom_type != "Polygon":
        return point
    poly = (f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{_coords(outline.exterior)}</coordinates>"
            "</LinearRing></outerBoundaryIs></Polygon>")
    return f"<MultiGeometry>{point}{poly}</MultiGeometry>"


_DATA_FIELDS = ("suspect_id", "status", "category", "township", "village", "cell_id", "team", "classes",
                "n_detections", "max_score", "note", "findings", "updated_at")


def kml_document(records: Sequence[FieldRecord], title: str = "skysieve suspects",
                 chip_hrefs: dict[str, list[str]] | None = None) -> str:
    """The KML text: one Folder per status, one Placemark per suspect (point + outline)."""
    chip_hrefs = chip_hrefs or {}
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<kml xmlns="{KML_NS}"><Document>',
             f"<name>{xml_text(title)}</name>", _styles()]
    for s in STATUSES:
        group = [r for r in records if r.status == s.code]
        if not group:
            continue
        parts.append(f"<Folder><name>{xml_text(f'{s.zh} / {s.en}')} ({len(group)})</name>")
        for r in group:
            data = "".join(f'<Data name="{f}"><value>{xml_text(getattr(r, f))}</value></Data>' for f in _DATA_FIELDS)
            parts.append(f"<Placemark id={xml_attr(r.suspect_id)}><name>{xml_text(r.name)}</name>"
                         f"<description>{xml_cdata(_description(r, chip_hrefs.get(r.suspect_id, [])))}</description>"
                         f"<styleUrl>#status-{s.code}</styleUrl><ExtendedData>{data}</ExtendedData>"
                         f"{_geometry(r)}</Placemark>\n")
        parts.append("</Folder>")
    parts.append("</Document></kml>\n")
    return "".join(parts)


def write_kml(records: Sequence[FieldRecord], out: Path) -> Path:
    """A KML file (no chips: a bare KML cannot carry images; use KMZ)."""
    with atomic_path(out) as tmp:
        tmp.write_text(kml_document(records), encoding="utf-8")
    return out


def write_kmz(records: Sequence[FieldRecord], out: Path) -> Path:
    """A KMZ: ``doc.kml`` plus the evidence chips under ``files/``, shown in each placemark's balloon."""
    hrefs: dict[str, list[str]] = {}
    files: dict[str, Path] = {}
    for r in records:
        for chip in r.chips:
            name = f"files/{chip.name}"
            files[name] = chip
            hrefs.setdefault(r.suspect_id, []).append(name)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("doc.kml", kml_document(records, chip_hrefs=hrefs))
        for name, path in files.items():
            z.write(path, name, compress_type=zipfile.ZIP_STORED)  # PNG is compressed already
    return out

"""Object factories: each returns the shapes that draw one object and its :class:`TruthObject`.

Sizes are physical (metres) and follow what inspectors see on site: makeshift tanks 1.5 to 6 m
across, flue stacks and chimneys 8 to 35 m tall, 200 L drums 0.58 m across and 0.88 m tall, IBC
totes 1.2 x 1.0 m. Colours are RGB in 0..1. ``toward`` is the unit ground vector towards the sun
(east, north), used to light the sun-facing side of round tops and pitched roofs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from skysieve.datasets.scene import Shape, TruthObject, disc_polygon, rect

__all__ = ["vertical_tank", "horizontal_tank", "chimney", "drum_stockpile", "building", "tree", "planter",
           "manhole", "silo", "car", "haystack", "wall_segments", "scrap_heap", "solar_heater", "cistern",
           "tyre_pile", "ground_patch", "LABELLED_MAKERS", "DISTRACTOR_MAKERS"]

Rng = np.random.Generator

STEEL = [(0.80, 0.81, 0.82), (0.70, 0.71, 0.70), (0.62, 0.60, 0.57), (0.56, 0.38, 0.27), (0.86, 0.86, 0.84)]
PLASTIC = [(0.16, 0.36, 0.72), (0.90, 0.90, 0.88), (0.13, 0.13, 0.14), (0.25, 0.50, 0.30), (0.85, 0.75, 0.30)]
DRUM = [(0.12, 0.30, 0.70), (0.12, 0.12, 0.13), (0.70, 0.16, 0.13), (0.88, 0.88, 0.86), (0.20, 0.45, 0.25),
        (0.85, 0.65, 0.15), (0.45, 0.45, 0.48)]
ROOF = {"blue_steel": (0.22, 0.45, 0.72), "grey_concrete": (0.60, 0.60, 0.58), "red_tile": (0.60, 0.30, 0.22),
        "grey_tile": (0.42, 0.43, 0.45), "rust": (0.52, 0.36, 0.26), "white_steel": (0.85, 0.86, 0.86)}


def _shade(color, k: float) -> tuple[float, float, float]:
    return tuple(float(min(1.0, max(0.0, c * k))) for c in color)


def _jitter(rng: Rng, color, amount: float = 0.06) -> tuple[float, float, float]:
    return tuple(float(np.clip(c * (1 + rng.uniform(-amount, amount)), 0, 1)) for c in color)


def _lit_disc(centre, radius, height, color, toward, wall=None, shadow=True) -> list[Shape]:
    """A round top: a darker full disc, then a lighter disc shifted towards the sun (a lit crescent)."""
    c = np.asarray(centre, float)
    shift = 0.12 * radius * np.asarray(toward)
    return [Shape("disc", c[None], _shade(color, 0.82), height, radius, wall or _shade(color, 0.6), shadow),
            Shape("disc", (c + shift)[None], _shade(color, 1.08), height, radius * 0.86, shadow=False)]


def vertical_tank(rng: Rng, x: float, y: float, toward, site_id=None, diameter=None) -> tuple[list[Shape], TruthObject]:
    """A standing cylinder (steel or plastic), flat or low-cone top with a manway."""
    d = diameter if diameter is not None else float(rng.uniform(1.5, 6.0))
    plastic = d < 3.5 and rng.random() < 0.5
    color = _jitter(rng, PLASTIC[rng.integers(len(PLASTIC))] if plastic else STEEL[rng.integers(len(STEEL))])
    h = float(rng.uniform(0.8, 1.6) * d) if plastic else float(rng.uniform(0.6, 1.8) * d)
    h = max(1.2, min(h, 10.0))
    shapes = _lit_disc((x, y), d / 2, h, color, toward)
    if not plastic and rng.random() < 0.35:  # low cone roof: concentric bands, lit towards the sun
        for k in (0.66, 0.33):
            shapes.append(Shape("disc", np.array([[x, y]]) + 0.06 * d * k * np.asarray(toward),
                                _shade(color, 1.12 - 0.25 * k), h + 0.15 * (1 - k) * d, d / 2 * k, shadow=False))
    if rng.random() < 0.4:  # ladder / handrail from the rim towards the centre
        a = float(rng.uniform(0, 360))
        u = np.array([math.cos(math.radians(a)), math.sin(math.radians(a))])
        c = np.array([x, y]) + 0.3 * d * u
        shapes.append(Shape("poly", rect(c[0], c[1], 0.12, 0.4 * d, a - 90), _shade(color, 0.45), h + 0.05,
                            shadow=False))
    if rng.random() < 0.7:  # manway / vent near the centre
        off = np.asarray(toward) * 0 + rng.uniform(-0.2, 0.2, 2) * d
        shapes.append(Shape("disc", np.array([[x + off[0], y + off[1]]]), _shade(color, 0.55), h + 0.1,
                            max(0.15, 0.08 * d), shadow=False))
    if rng.random() < 0.4:  # rim ring drawn as a thin darker annulus
        shapes.insert(1, Shape("disc", np.array([[x, y]]), _shade(color, 0.7), h, d / 2 * 0.97, shadow=False))
    truth = TruthObject("tank", "plastic_tank" if plastic else "vertical_tank", disc_polygon(np.array([x, y]), d / 2),
                        h, site_id)
    return shapes, truth


def horizontal_tank(rng: Rng, x: float, y: float, toward, site_id=None) -> tuple[list[Shape], TruthObject]:
    """A lying cylinder on saddles: a long rectangle shaded across its axis."""
    d = float(rng.uniform(1.5, 3.2))
    length = float(d * rng.uniform(1.8, 4.0))
    angle = float(rng.uniform(0, 180))
    color = _jitter(rng, STEEL[rng.integers(len(STEEL))] if rng.random() < 0.7 else PLASTIC[rng.integers(len(PLASTIC))])
    h = d + 0.3
    a = math.radians(angle)
    across = np.array([math.cos(a), math.sin(a)])  # local x axis (width direction)
    lit = 1 if float(np.dot(across, toward)) > 0 else -1
    shapes = [Shape("poly", rect(x, y, d, length, angle), _shade(color, 0.75), h, wall=_shade(color, 0.6))]
    for _k, (off, w, f) in enumerate(((0.18, 0.34, 1.05), (0.30, 0.14, 1.15), (-0.30, 0.2, 0.62))):
        cx, cy = np.array([x, y]) + lit * off * d * across
        shapes.append(Shape("poly", rect(cx, cy, w * d, length * 0.98, angle), _shade(color, f), h, shadow=False))
    return shapes, TruthObject("tank", "horizontal_tank", rect(x, y, d, length, angle), h, site_id)


def chimney(rng: Rng, x: float, y: float, toward, site_id=None) -> tuple[list[Shape], TruthObject]:
    """A brick/concrete chimney or a thin steel flue stack: small round top, long shadow."""
    steel = rng.random() < 0.5
    d = float(rng.uniform(0.35, 0.8) if steel else rng.uniform(0.9, 2.2))
    h = float(rng.uniform(8, 20) if steel else rng.uniform(15, 35))
    color = _jitter(rng, (0.62, 0.62, 0.6) if steel else [(0.55, 0.30, 0.22), (0.65, 0.64, 0.6)][rng.integers(2)])
    shapes = _lit_disc((x, y), d / 2, h, color, toward, wall=_shade(color, 0.85))
    shapes.append(Shape("disc", np.array([[x, y]]), (0.06, 0.06, 0.06), h + 0.05, d / 2 * 0.6, shadow=False))
    return shapes, TruthObject("chimney", "flue_stack" if steel else "chimney", disc_polygon(np.array([x, y]), d / 2),
                               h, site_id)


def _drum(x, y, color, h, toward) -> list[Shape]:
    return [Shape("disc", np.array([[x, y]]), _shade(color, 0.85), h, 0.29, wall=_shade(color, 0.6)),
            Shape("disc", np.array([[x + 0.03 * toward[0], y + 0.03 * toward[1]]]), _shade(color, 1.1), h, 0.22,
                  shadow=False),
            Shape("disc", np.array([[x + 0.12, y + 0.05]]), _shade(color, 0.5), h + 0.01, 0.04, shadow=False)]


#: how often each kind of pile is drawn: in the worlds, and on training tiles, which add the small piles and
#: single long rows a first model missed (a handful of drums by a wall, one row along a fence). The tiles of
#: skysieve-det-v6 were drawn with these. Session 7's run I weighted loose heaps up (heap 0.35, rows 0.25,
#: ibc 0.12, few 0.16, line 0.12; synth320-f) to teach the stray drums a heap's label takes in: better on the
#: calibration worlds, not on the test worlds, not shipped (v6's card)
DRUM_STYLES = {"rows": 0.45, "heap": 0.35, "ibc": 0.2}
TILE_DRUM_STYLES = {"rows": 0.3, "heap": 0.2, "ibc": 0.15, "few": 0.2, "line": 0.15}


def drum_stockpile(rng: Rng, x: float, y: float, toward, site_id=None,
                   styles: dict[str, float] | None = None) -> tuple[list[Shape], TruthObject]:
    """200 L drums (0.58 m) or IBC totes (1.2 x 1.0 m) in rows or a loose heap; one label for the pile.
    ``styles`` (default :data:`DRUM_STYLES`) may add "few" (1 to 4 drums, loose or side by side) and "line"
    (one row of 3 to 14 drums)."""
    angle = float(rng.uniform(0, 180))
    a = math.radians(angle)
    ux, uy = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    styles = DRUM_STYLES if styles is None else styles
    style = rng.choice(list(styles), p=np.array(list(styles.values())) / sum(styles.values()))
    palette = [DRUM[i] for i in rng.choice(len(DRUM), size=int(rng.integers(1, 3)), replace=False)]
    shapes: list[Shape] = []
    pts = []
    if style == "ibc":
        nx, ny = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        cage = (0.55, 0.55, 0.55)
        for i in range(nx):
            for j in range(ny):
                if rng.random() < 0.1 and (i, j) != (0, 0):  # gaps, but never an empty stockpile
                    continue
                c = np.array([x, y]) + (i - (nx - 1) / 2) * 1.3 * ux + (j - (ny - 1) / 2) * 1.1 * uy
                tote = rect(c[0], c[1], 1.2, 1.0, angle)
                shapes.append(Shape("poly", tote, _jitter(rng, (0.88, 0.88, 0.84)), 1.15, wall=cage))
                shapes.append(Shape("poly", rect(c[0], c[1], 0.9, 0.1, angle), cage, 1.16, shadow=False))
                shapes.append(Shape("poly", rect(c[0], c[1], 0.1, 0.8, angle), cage, 1.16, shadow=False))
                shapes.append(Shape("disc", c[None], (0.3, 0.3, 0.32), 1.17, 0.1, shadow=False))
                pts.append(tote)
        kind = "ibc_totes"
    else:
        if style == "few":
            n = int(rng.integers(1, 5))
            if rng.random() < 0.5:  # side by side
                centres = [np.array([x, y]) + (i - (n - 1) / 2) * 0.6 * ux for i in range(n)]
            else:  # loose: pushed apart below like a heap
                centres = [np.array([x, y]) + rng.normal(0, 0.5, 2) for _ in range(n)]
        elif style == "line":
            n = int(rng.integers(3, 15))
            centres = [np.array([x, y]) + (i - (n - 1) / 2) * 0.6 * ux for i in range(n)]
        elif style == "rows":
            nx, ny = int(rng.integers(2, 10)), int(rng.integers(1, 5))
            centres = [np.array([x, y]) + (i - (nx - 1) / 2) * 0.6 * ux + (j - (ny - 1) / 2) * 0.6 * uy
                       for i in range(nx) for j in range(ny) if rng.random() > 0.08 or (i, j) == (0, 0)]
        else:
            n = int(rng.integers(5, 40))
            r = 0.35 * math.sqrt(n)
            centres = [np.array([x, y]) + rng.normal(0, r / 1.5, 2) for _ in range(n)]
        if style in ("heap", "few"):  # push apart drums that overlap too much (cheap relaxation)
            arr = np.array(centres)
            for _ in range(6):
                diff = arr[:, None] - arr[None]
                dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(arr))
                push = np.clip(0.56 - dist, 0, None)[..., None] * diff / dist[..., None]
                arr = arr + 0.5 * push.sum(axis=1)
            centres = list(arr)
        stacked = style == "rows" and rng.random() < 0.3
        for c in centres:
            color = _jitter(rng, palette[rng.integers(len(palette))], 0.1)
            shapes.extend(_drum(c[0], c[1], color, 0.88, toward))
            pts.append(disc_polygon(c, 0.29, 12))
        if stacked:
            for c in centres[: len(centres) // 2]:
                shapes.extend(_drum(c[0] + 0.05, c[1] + 0.05, _jitter(rng, palette[0], 0.1), 1.76, toward))
        kind = "drum_" + style
    hull = cv2.convexHull(np.vstack(pts).astype(np.float32))[:, 0, :].astype(float)
    height = max(s.height_m for s in shapes) if shapes else 0.9
    return shapes, TruthObject("drum_stockpile", kind, hull, height, site_id)


LABELLED_MAKERS = {"tank": (vertical_tank, horizontal_tank), "chimney": (chimney,), "drum_stockpile": (drum_stockpile,)}


def building(rng: Rng, x: float, y: float, w: float, length: float, angle: float, toward, roof: str | None = None,
             height: float | None = None) -> list[Shape]:
    """A building: flat or corrugated roof, or a pitched roof whose sun-facing half is lighter."""
    roof = roof or str(rng.choice(list(ROOF)))
    color = _jitter(rng, ROOF[roof])
    h = height if height is not None else float(rng.uniform(3, 8))
    wall = _jitter(rng, (0.78, 0.76, 0.72))
    if roof in ("red_tile", "grey_tile"):  # ridge along the long axis (local y)
        a = math.radians(angle)
        across = np.array([math.cos(a), math.sin(a)])
        lit = 1.0 if float(np.dot(across, toward)) > 0 else -1.0
        out = []
        for side in (-1.0, 1.0):
            c = np.array([x, y]) + side * w / 4 * across
            out.append(Shape("poly", rect(c[0], c[1], w / 2, length, angle), _shade(color, 1.1 if side == lit else 0.8),
                             h, wall=wall, stripe=(0.3, angle, 0.08)))
        return out
    stripe = (0.25, angle, 0.12) if roof.endswith("steel") or roof == "rust" else None
    return [Shape("poly", rect(x, y, w, length, angle), color, h, wall=wall, stripe=stripe)]


def tree(rng: Rng, x: float, y: float, palette, toward) -> list[Shape]:
    """A crown of a few overlapping discs, lit on the sun side; its shadow starts at the crown's base
    (a thin trunk shadow joins it to the foot of the tree)."""
    r = float(rng.uniform(1.5, 4.0))
    h = float(rng.uniform(4, 12))
    k = float(rng.uniform(0.85, 1.15))  # brightness varies much more than hue among crowns
    base = tuple(float(np.clip(c * k * (1 + rng.uniform(-0.04, 0.04)), 0, 1)) for c in palette)
    crown_base = float(rng.uniform(0.3, 0.5) * h)
    out = [Shape("disc", np.array([[x, y]]), _shade(base, 0.75), h, r, wall=_shade(base, 0.85), base_m=crown_base)]
    out.append(Shape("disc", np.array([[x, y]]), _shade(base, 0.5), crown_base, 0.15))  # trunk: hidden, casts
    for _ in range(int(rng.integers(2, 5))):
        off = rng.normal(0, r / 3, 2) + 0.2 * r * np.asarray(toward)
        out.append(Shape("disc", np.array([[x + off[0], y + off[1]]]), _shade(base, rng.uniform(0.9, 1.2)),
                         h * 1.01, r * rng.uniform(0.3, 0.55), shadow=False))
    return out


def planter(rng: Rng, x: float, y: float, toward) -> tuple[list[Shape], TruthObject]:
    """A round concrete flower bed: the commonest false 'tank'."""
    r = float(rng.uniform(0.6, 2.2))
    rim = _jitter(rng, (0.72, 0.71, 0.68))
    inner = _jitter(rng, [(0.25, 0.42, 0.18), (0.42, 0.33, 0.24), (0.55, 0.30, 0.35)][rng.integers(3)], 0.15)
    shapes = [Shape("disc", np.array([[x, y]]), rim, 0.5, r), Shape("disc", np.array([[x, y]]), inner, 0.5, r * 0.82,
                                                                    shadow=False)]
    return shapes, TruthObject(None, "planter", disc_polygon(np.array([x, y]), r), 0.5)


def manhole(rng: Rng, x: float, y: float) -> tuple[list[Shape], TruthObject]:
    r = float(rng.uniform(0.3, 0.4))
    return ([Shape("disc", np.array([[x, y]]), (0.22, 0.22, 0.23), 0.0, r, layer=3),
             Shape("disc", np.array([[x, y]]), (0.32, 0.32, 0.33), 0.0, r * 0.8, layer=3)],
            TruthObject(None, "manhole", disc_polygon(np.array([x, y]), r), 0.0))


def silo(rng: Rng, x: float, y: float, toward, r: float | None = None) -> tuple[list[Shape], TruthObject]:
    """A farm silo: corrugated galvanised cylinder with a cone roof (concentric bands)."""
    r = r or float(rng.uniform(2.0, 4.0))
    h = float(rng.uniform(8, 15))
    color = _jitter(rng, (0.76, 0.77, 0.78))
    shapes = _lit_disc((x, y), r, h, color, toward)
    for k in (0.7, 0.45):
        shapes.append(Shape("disc", np.array([[x, y]]) + 0.08 * r * k * np.asarray(toward), _shade(color, 1.1 - k / 3),
                            h + 0.2 * (1 - k), r * k, shadow=False))
    shapes.append(Shape("disc", np.array([[x, y]]), _shade(color, 0.7), h + 0.6, 0.35, shadow=False))
    return shapes, TruthObject(None, "silo", disc_polygon(np.array([x, y]), r), h)


def car(rng: Rng, x: float, y: float, angle: float) -> tuple[list[Shape], TruthObject]:
    color = _jitter(rng, [(0.9, 0.9, 0.9), (0.1, 0.1, 0.1), (0.5, 0.5, 0.52), (0.65, 0.1, 0.1),
                          (0.15, 0.25, 0.55)][rng.integers(5)])
    w, length = float(rng.uniform(1.7, 1.9)), float(rng.uniform(4.0, 5.0))
    a = math.radians(angle)
    along = np.array([-math.sin(a), math.cos(a)])
    shapes = [Shape("poly", rect(x, y, w, length, angle), color, 1.45)]
    glass = np.array([x, y]) + 0.18 * length * along
    shapes.append(Shape("poly", rect(glass[0], glass[1], w * 0.85, length * 0.18, angle), (0.1, 0.12, 0.15), 1.46,
                        shadow=False))
    return shapes, TruthObject(None, "car", rect(x, y, w, length, angle), 1.45)


def haystack(rng: Rng, x: float, y: float, toward) -> tuple[list[Shape], TruthObject]:
    r = float(rng.uniform(0.8, 2.5))
    color = _jitter(rng, (0.78, 0.68, 0.42), 0.1)
    return _lit_disc((x, y), r, float(rng.uniform(1.2, 3.0)), color, toward), \
        TruthObject(None, "haystack", disc_polygon(np.array([x, y]), r), 2.0)


def scrap_heap(rng: Rng, x: float, y: float, size: float) -> list[Shape]:
    """Loose scrap: many small rectangles of rust, grey and faded paint."""
    out = []
    for _ in range(int(size * size / 3)):
        c = np.array([x, y]) + rng.uniform(-size / 2, size / 2, 2)
        color = _jitter(rng, [(0.5, 0.35, 0.25), (0.55, 0.55, 0.55), (0.3, 0.3, 0.32), (0.6, 0.5, 0.3),
                              (0.25, 0.35, 0.5)][rng.integers(5)], 0.2)
        out.append(Shape("poly", rect(c[0], c[1], rng.uniform(0.3, 2.0), rng.uniform(0.3, 3.0), rng.uniform(0, 180)),
                         color, float(rng.uniform(0.2, 1.5)), shadow=rng.random() < 0.5))
    return out


def wall_segments(poly: np.ndarray, color, height: float = 2.2, width: float = 0.3,
                  gate: int | None = 0) -> list[Shape]:
    """Perimeter wall along a polygon's edges (a gap for the gate in edge ``gate``)."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        seg = q - p
        length = float(np.hypot(*seg))
        if length < 1e-6:
            continue
        ang = math.degrees(math.atan2(seg[1], seg[0])) - 90.0
        if i == gate and length > 12:
            a = p + seg * (0.5 - 3 / length)
            b = p + seg * (0.5 + 3 / length)
            parts = [(p, a), (b, q)]
        else:
            parts = [(p, q)]
        for u, v in parts:
            m = (u + v) / 2
            out.append(Shape("poly", rect(m[0], m[1], width, float(np.hypot(*(v - u))), ang), color, height,
                             wall=_shade(color, 0.8)))
    return out


def solar_heater(rng: Rng, x: float, y: float, angle: float, roof_m: float) -> tuple[list[Shape], TruthObject]:
    """A rooftop solar water heater (on most rural roofs in north China): a panel of dark evacuated tubes
    under a white or steel horizontal cylinder, the commonest false 'horizontal tank'."""
    length = float(rng.uniform(1.5, 2.5))
    a = math.radians(angle)
    across = np.array([math.cos(a), math.sin(a)])
    panel = rect(x, y, 1.6, length, angle)
    tube_c = np.array([x, y]) + 0.95 * across
    h = roof_m + 1.2
    shapes = [Shape("poly", panel, (0.12, 0.14, 0.2), roof_m + 0.6, stripe=(0.08, angle, 0.3)),
              Shape("poly", rect(tube_c[0], tube_c[1], 0.45, length, angle), _jitter(rng, (0.88, 0.88, 0.86)), h,
                    wall=(0.6, 0.6, 0.6))]
    return shapes, TruthObject(None, "solar_water_heater", rect(x, y, 2.1, length, angle), h)


def cistern(rng: Rng, x: float, y: float) -> tuple[list[Shape], TruthObject]:
    """A round concrete cistern or pond cover, nearly flush with the ground: round, but not a tank."""
    r = float(rng.uniform(1.0, 3.0))
    color = _jitter(rng, (0.66, 0.65, 0.62))
    shapes = [Shape("disc", np.array([[x, y]]), color, 0.3, r),
              Shape("disc", np.array([[x + 0.3 * r, y]]), _shade(color, 0.6), 0.31, 0.3, shadow=False)]
    return shapes, TruthObject(None, "cistern", disc_polygon(np.array([x, y]), r), 0.3)


def tyre_pile(rng: Rng, x: float, y: float) -> tuple[list[Shape], TruthObject]:
    """Old tyres in a heap: dark rings about drum-sized, a false 'drum stockpile'."""
    shapes: list[Shape] = []
    pts = []
    for _ in range(int(rng.integers(4, 25))):
        c = np.array([x, y]) + rng.normal(0, 1.2, 2)
        r = float(rng.uniform(0.3, 0.45))
        h = float(rng.uniform(0.2, 1.2))
        shapes.append(Shape("disc", c[None], (0.1, 0.1, 0.1), h, r))
        shapes.append(Shape("disc", c[None], (0.25, 0.24, 0.22), h + 0.01, r * 0.55, shadow=False))
        pts.append(disc_polygon(c, r, 8))
    hull = cv2.convexHull(np.vstack(pts).astype(np.float32))[:, 0, :].astype(float)
    return shapes, TruthObject(None, "tyre_pile", hull, 1.2)


def ground_patch(rng: Rng, x: float, y: float, size: float, palette: list) -> Shape:
    """An irregular flat patch (gravel, puddle, oil stain, weeds): a jittered polygon."""
    n = int(rng.integers(6, 12))
    t = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = size / 2 * rng.uniform(0.5, 1.0, n)
    pts = np.column_stack([x + r * np.cos(t), y + r * np.sin(t)])
    return Shape("poly", pts, _jitter(rng, palette[rng.integers(len(palette))], 0.1), layer=1)


#: patch colours: gravel, puddle / wet soil, oil stain, weeds, sand
PATCH_COLORS = [(0.58, 0.56, 0.52), (0.30, 0.30, 0.30), (0.18, 0.17, 0.16), (0.35, 0.45, 0.22), (0.72, 0.66, 0.52)]


DISTRACTOR_MAKERS = {
    "planter": lambda rng, x, y, toward: planter(rng, x, y, toward),
    "manhole": lambda rng, x, y, toward: manhole(rng, x, y),
    "silo": lambda rng, x, y, toward: silo(rng, x, y, toward),
    "car": lambda rng, x, y, toward: car(rng, x, y, float(rng.uniform(0, 180))),
    "haystack": lambda rng, x, y, toward: haystack(rng, x, y, toward),
    "cistern": lambda rng, x, y, toward: cistern(rng, x, y),
    "tyre_pile": lambda rng, x, y, toward: tyre_pile(rng, x, y),
    "solar_heater": lambda rng, x, y, toward: solar_heater(rng, x, y, float(rng.uniform(0, 180)),
                                                           float(rng.uniform(0, 1.0))),
}

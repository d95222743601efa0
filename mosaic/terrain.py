"""The ground's heights as the height-aware adjustment solves them: a coarse grid of nodes, bilinear between.

The plane adjustment puts every photo on one flat ground plane (z = 0: the take-off point's level, which the
recorded altitudes are above). Ground that rises or falls by metres (Brighton's park: ~2.5 m) shows a point
at a different place in each photo (``g = c + (X - c) H / (H - h)`` for a camera at plane position ``c``,
height ``H``), and a plane adjustment bends the photos to fit that parallax. :func:`skysieve.mosaic.adjust.adjust`
with ``terrain_cell_m > 0`` solves the heights of this grid's nodes together with the placements; the mosaic
then renders through them (:func:`terrain_surface`: the same :class:`~skysieve.mosaic.surface.Surface` a DSM
gives, smooth and with every photo seeing everything).

Heights are metres above the ground plane; nodes sit at ``(x_min + c * cell_m, y_max - r * cell_m)``; beyond
the grid the edge nodes' values hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Terrain", "terrain_surface"]


@dataclass(frozen=True)
class Terrain:
    """Node heights (rows x cols, metres above the ground plane) on a north-up lattice."""

    x_min: float
    y_max: float
    cell_m: float
    heights: np.ndarray  # rows x cols, float64

    @classmethod
    def covering(cls, points: np.ndarray, cell_m: float, margin_m: float = 0.0) -> Terrain:
        """A flat (zero) terrain whose nodes cover ``points`` (N x 2) plus ``margin_m``, snapped to ``cell_m``."""
        lo, hi = points.min(0) - margin_m, points.max(0) + margin_m
        x0 = np.floor(lo[0] / cell_m) * cell_m
        y1 = np.ceil(hi[1] / cell_m) * cell_m
        cols = int(np.ceil((hi[0] - x0) / cell_m)) + 1
        rows = int(np.ceil((y1 - lo[1]) / cell_m)) + 1
        return cls(float(x0), float(y1), float(cell_m), np.zeros((max(rows, 2), max(cols, 2))))

    @property
    def shape(self) -> tuple[int, int]:
        return self.heights.shape

    def with_heights(self, heights: np.ndarray) -> Terrain:
        return Terrain(self.x_min, self.y_max, self.cell_m, np.asarray(heights, float).reshape(self.shape))

    def weights(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N x 4 flat node indices, N x 4 bilinear weights) of ground points ``xy`` (N x 2)."""
        rows, cols = self.shape
        fc = np.clip((xy[:, 0] - self.x_min) / self.cell_m, 0, cols - 1)
        fr = np.clip((self.y_max - xy[:, 1]) / self.cell_m, 0, rows - 1)
        c0 = np.minimum(np.floor(fc).astype(np.int64), cols - 2)
        r0 = np.minimum(np.floor(fr).astype(np.int64), rows - 2)
        tc, tr = fc - c0, fr - r0
        idx = np.column_stack([r0 * cols + c0, r0 * cols + c0 + 1, (r0 + 1) * cols + c0, (r0 + 1) * cols + c0 + 1])
        w = np.column_stack([(1 - tr) * (1 - tc), (1 - tr) * tc, tr * (1 - tc), tr * tc])
        return idx, w

    def sample(self, xy: np.ndarray) -> np.ndarray:
        """Heights at ground points ``xy`` (N x 2), bilinear."""
        idx, w = self.weights(np.atleast_2d(np.asarray(xy, float)))
        return (self.heights.ravel()[idx] * w).sum(1)

    def to_json(self) -> dict:
        return {"x_min": self.x_min, "y_max": self.y_max, "cell_m": self.cell_m,
                "heights": np.round(self.heights, 4).tolist()}

    @classmethod
    def from_json(cls, d: dict) -> Terrain:
        return cls(float(d["x_min"]), float(d["y_max"]), float(d["cell_m"]), np.array(d["heights"], float))


def terrain_surface(terrain: Terrain, placed, out_grid, gsd_m: float = 1.0):
    """The :class:`~skysieve.mosaic.surface.Surface` of ``terrain`` over ``out_grid`` (the mosaic's grid) at
    ``gsd_m``, for rendering and seams: heights bilinear from the nodes, every photo seeing every cell (a
    terrain this coarse hides nothing), cameras read off the placed photos' homographies."""
    from skysieve.mosaic.render import OutputGrid
    from skysieve.mosaic.surface import Surface, camera_centre

    g = out_grid
    grid = OutputGrid.covering((g.x_min, g.y_max - g.height * g.gsd_m, g.x_min + g.width * g.gsd_m, g.y_max), gsd_m)
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    xy = np.column_stack([grid.x_min + cols.ravel() * gsd_m, grid.y_max - rows.ravel() * gsd_m])
    h = terrain.sample(xy).reshape(grid.height, grid.width).astype(np.float32)
    cameras = np.array([camera_centre(pp) for pp in placed]) if placed else np.zeros((0, 3))
    return Surface(grid, h, h.copy(), cameras, [None] * len(placed))


def terrain_stats(terrain: Terrain, surface) -> dict:
    """ortho.json's figures about the terrain the cell was solved and rendered on."""
    h = surface.heights if surface is not None else terrain.heights
    return {"terrain_cell_m": terrain.cell_m, "terrain_nodes": int(terrain.heights.size),
            "terrain_height_min_m": round(float(np.percentile(h, 1)), 2),
            "terrain_height_max_m": round(float(np.percentile(h, 99)), 2)}

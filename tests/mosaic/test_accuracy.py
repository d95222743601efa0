"""The misfit measures: a mosaic turned and scaled as a whole has a large local misfit about its mean and
none once that similarity is removed."""

from __future__ import annotations

import numpy as np

from skysieve.mosaic.accuracy import Misfit


def test_local_misfit_after_the_blocks_similarity() -> None:
    rng = np.random.default_rng(0)
    cols, rows = np.meshgrid(np.arange(0, 4000, 100.0), np.arange(0, 3000, 100.0))
    centres = np.column_stack([cols.ravel(), rows.ravel()])
    east, north = centres[:, 0] - 2000, -(centres[:, 1] - 1500)
    gsd = 0.05
    # 0.1 % bigger and turned 0.1 degrees, plus 0.3 px of noise: pixels -> metres (east, north)
    w, s = np.radians(0.1), 0.001
    px = np.column_stack([s * east - w * north, w * east + s * north]) + rng.normal(0, 0.3, (len(east), 2))
    off = px * gsd
    local = np.linalg.norm(px - px.mean(0), axis=1)
    m = Misfit(*off.mean(0), float(np.percentile(local, 90)), float(np.percentile(local, 90)) * gsd, len(off),
               len(off), off, centres, gsd)
    assert m.local_p90_px > 3.0  # the block's turn and scale reach 4-6 px at its corners
    assert m.local_p90_px_after_similarity < 0.7  # what is left is the noise

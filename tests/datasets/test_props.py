"""Object makers never produce an empty object, whatever the dice say."""

from __future__ import annotations

import numpy as np

from skysieve.datasets.props import drum_stockpile


def test_drum_stockpile_is_never_empty() -> None:
    # before the fix, a seed that skipped every IBC tote (or every drum of a small row) crashed the
    # dataset build with "need at least one array to concatenate"
    for seed in range(600):
        rng = np.random.default_rng(seed)
        shapes, truth = drum_stockpile(rng, 10.0, 10.0, (0.5, 0.5), "S1")
        assert shapes, seed
        assert truth.polygon.shape[0] >= 3 and truth.cls == "drum_stockpile"

"""Object makers never produce an empty object, whatever the dice say."""

from __future__ import annotations

import numpy as np

from skysieve.datasets.props import TILE_DRUM_STYLES, drum_stockpile


def test_drum_stockpile_is_never_empty() -> None:
    # before the fix, a seed that skipped every IBC tote (or every drum of a small row) crashed the
    # dataset build with "need at least one array to concatenate"
    for seed in range(600):
        rng = np.random.default_rng(seed)
        shapes, truth = drum_stockpile(rng, 10.0, 10.0, (0.5, 0.5), "S1")
        assert shapes, seed
        assert truth.polygon.shape[0] >= 3 and truth.cls == "drum_stockpile"


def _drum_centres(shapes) -> np.ndarray:
    """Centres of the drums' bodies (the 0.29 m discs at one drum's height)."""
    return np.array([s.pts[0] for s in shapes if s.kind == "disc" and s.radius_m == 0.29 and s.height_m == 0.88])


def test_training_tiles_add_small_piles_and_single_rows_that_do_not_overlap() -> None:
    # the worlds keep their own mix (rows, heaps, IBC totes); training tiles add what v4 missed on unseen
    # worlds: a drum or a few, and one long row along a fence
    kinds: dict[str, list[int]] = {}
    for seed in range(400):
        rng = np.random.default_rng(seed)
        shapes, truth = drum_stockpile(rng, 0.0, 0.0, (0.5, 0.5), styles=TILE_DRUM_STYLES)
        if truth.kind.startswith("drum_"):
            c = _drum_centres(shapes)
            kinds.setdefault(truth.kind, []).append(len(c))
            if truth.kind in ("drum_few", "drum_line"):  # 0.58 m drums may touch, not pass through each other
                gaps = np.hypot(*(c[:, None] - c[None]).transpose(2, 0, 1)) + 9 * np.eye(len(c))
                assert gaps.min() > 0.5, (seed, truth.kind)
            if truth.kind == "drum_line":  # one row: every centre on one straight line
                d = c - c.mean(axis=0)
                assert np.linalg.svd(d, compute_uv=False)[-1] < 1e-6, seed
    assert min(kinds["drum_few"]) == 1 and max(kinds["drum_few"]) == 4
    assert min(kinds["drum_line"]) >= 3 and max(kinds["drum_line"]) <= 14
    assert min(kinds["drum_heap"]) >= 5 and min(kinds["drum_rows"]) >= 1
    world = {drum_stockpile(np.random.default_rng(s), 0.0, 0.0, (0.5, 0.5))[1].kind for s in range(400)}
    assert world == {"drum_rows", "drum_heap", "ibc_totes"}, "worlds stay as they were: their seeds are benchmarks"

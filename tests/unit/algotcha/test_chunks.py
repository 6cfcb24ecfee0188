"""How a chunked job is cut: consecutive, covering every unit once, as even as units allow."""

from __future__ import annotations

import itertools

from algotcha.services.chunks import CHUNKS_PER_JOB, cut


def test_cut_covers_every_unit_once_in_order() -> None:
    for units in (1, 2, 15, 16, 17, 18, 1000, 10_000):
        bounds = cut(units)
        assert bounds[0][0] == 0 and bounds[-1][1] == units
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(first < end for first, end in bounds)
        assert len(bounds) <= CHUNKS_PER_JOB


def test_cut_makes_chunks_of_near_equal_size() -> None:
    sizes = [end - first for first, end in cut(1000)]
    assert len(sizes) == 16 and max(sizes) == 63 and min(sizes) >= 55
    assert cut(3) == [(0, 1), (1, 2), (2, 3)]
    assert cut(18) == [(n, n + 2) for n in range(0, 18, 2)]

"""How a chunked job is cut (consecutive, covering every unit once, as even as units allow) and
in which order a worker claims its chunks (stretches of consecutive ones)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from algotcha.db.job_chunks import ChunkRow
from algotcha.services.chunks import CHUNKS_PER_JOB, claim_order, cut


def test_cut_covers_every_unit_once_in_order() -> None:
    for units in (1, 2, 15, 16, 17, 18, 1000, 10_000):
        bounds = cut(units)
        assert bounds[0][0] == 0 and bounds[-1][1] == units
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(first < end for first, end in bounds)
        assert len(bounds) <= CHUNKS_PER_JOB


def test_cut_makes_chunks_whose_sizes_differ_by_one_unit_at_most() -> None:
    for units in (33, 40, 1000, 10_007):
        sizes = [end - first for first, end in cut(units)]
        assert len(sizes) == CHUNKS_PER_JOB
        assert max(sizes) - min(sizes) <= 1, units
    assert cut(3) == [(0, 1), (1, 2), (2, 3)]
    assert cut(64, chunks=4) == [(0, 16), (16, 32), (32, 48), (48, 64)]


def chunks_in(states: str, done_by: dict[int, tuple[str, int]] | None = None) -> list[ChunkRow]:
    """A job's chunks from one letter each (u undone, r running, d done); done_by maps a
    chunk to the worker that did it and the second, from a start, it finished."""
    names = {"u": "undone", "r": "running", "d": "done"}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for number, letter in enumerate(states):
        worker, second = (done_by or {}).get(number, ("other", 0))
        finished = start + timedelta(seconds=second) if letter == "d" else None
        rows.append(
            ChunkRow(
                job_id=1, chunk=number, first_unit=number * 10, end_unit=number * 10 + 10,
                status=names[letter], attempt=1 if letter != "u" else 0,
                worker_id=worker if letter != "u" else None,
                done_by=worker if letter == "d" else None, units_done=0, heartbeat_at=None,
                started_at=None, done_at=finished, elapsed_ms=None,
            )
        )  # fmt: skip
    return rows


def test_the_first_worker_starts_at_the_first_chunk_and_the_next_one_halfway() -> None:
    assert claim_order(chunks_in("u" * 16), "a")[0] == 0
    # chunk 0 is running: its worker goes on with 1, 2...; the second worker takes 8 onwards
    assert claim_order(chunks_in("r" + "u" * 15), "b")[0] == 8
    # a third worker halves the longer of the two stretches still ahead of a running chunk
    assert claim_order(chunks_in("r" + "u" * 7 + "r" + "u" * 5), "c")[0] == 4


def test_a_worker_goes_on_with_the_chunk_after_its_last_one() -> None:
    done = {0: ("a", 1), 1: ("a", 2), 8: ("b", 2)}
    assert claim_order(chunks_in("dd" + "u" * 6 + "dr" + "u" * 6, done), "a")[0] == 2
    # its next chunk is taken: it starts a stretch nobody leads into before stealing one
    done = {0: ("a", 1), 5: ("b", 1)}
    assert claim_order(chunks_in("drrrrduuuu", done), "a")[0] == 6
    assert claim_order(chunks_in("dduuuu", {1: ("a", 1)}), "b")[0] == 2


def test_a_redone_chunk_between_finished_ones_is_taken_before_stealing() -> None:
    # chunk 3 came back from a dead worker; 6.. are ahead of the running chunk 5
    assert claim_order(chunks_in("dddudruuuu"), "c")[:2] == [3, 8]


def test_the_order_lists_every_undone_chunk_once_and_nothing_else() -> None:
    for states in ("u", "uuu", "ruru", "drudur", "dddd", "rrrr", "uduuduuu"):
        order = claim_order(chunks_in(states, {0: ("a", 1)}), "a")
        assert sorted(order) == [n for n, letter in enumerate(states) if letter == "u"]

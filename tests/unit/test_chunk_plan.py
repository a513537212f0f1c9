"""How a job's rows are divided into chunks: even, at most CHUNK_SIZE, ending in smaller ones."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.imports.allocation import MIN_CHUNK, ChunkPlan


def sizes(plan: ChunkPlan) -> list[int]:
    counts = Counter(plan.chunk_of(i) for i in range(plan.rows))
    return [counts[c] for c in range(plan.chunks)]


@pytest.mark.parametrize("rows", [1, 9, 10, 20, 99, 100, 159, 160, 199, 500, 501, 1000, 4321, 10000])
@pytest.mark.parametrize("processes", [1, 2, 4, 8])
def test_every_row_has_one_chunk_in_row_order_and_no_chunk_is_empty_or_too_big(rows, processes):
    plan = ChunkPlan.make(rows, 100, processes)
    chunks = [plan.chunk_of(i) for i in range(rows)]
    assert chunks == sorted(chunks)  # rows keep their order: chunk n before chunk n + 1
    found = sizes(plan)
    assert sum(found) == rows and min(found) >= 1 and max(found) <= 100
    if len(plan.parts) > 1:
        assert min(found) >= MIN_CHUNK  # per-chunk overhead stays small


def test_a_500_row_file_over_two_processes_ends_in_halves_then_quarters():
    assert sizes(ChunkPlan.make(500, 100, 2)) == [63, 62, 63, 62, 63, 62, 32, 31, 16, 15, 16, 15]


def test_a_big_file_keeps_chunk_size_and_splits_only_one_chunk_per_process():
    found = sizes(ChunkPlan.make(10_000, 100, 2))
    assert found == [100] * 98 + [50] * 2 + [25] * 4


def test_splits_stop_at_the_floor():
    plan = ChunkPlan.make(100, 100, 2)  # eight chunks of 12-13 rows: halves would have 6
    assert plan.parts == ((8, 4),) and sizes(plan) == [13, 12, 13, 12, 13, 12, 13, 12]
    assert sizes(ChunkPlan.make(200, 100, 2)) == [25] * 6 + [13, 12, 13, 12]  # quarters would have 6
    assert sizes(ChunkPlan.make(20, 100, 2)) == [10, 10]
    assert ChunkPlan.make(0, 100, 2).chunks == 0


def test_chunks_stay_whole_while_other_work_waits():
    plan = ChunkPlan.make(500, 100, 2, split_end=False)  # the next file's units wait already
    assert sizes(plan) == [63, 62, 63, 62, 63, 62, 63, 62]


def test_a_small_job_is_one_chunk_while_other_work_waits():
    # Busy processes give it about one process at a time: one chunk, one overhead.
    assert sizes(ChunkPlan.make(20, 100, 2, split_end=False)) == [20]
    assert sizes(ChunkPlan.make(100, 100, 2, split_end=False)) == [100]
    assert sizes(ChunkPlan.make(20, 100, 2)) == [10, 10]  # idle processes share it

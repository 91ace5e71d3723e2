"""The hypothesis strategies draw what the conformance cases promise: payload sizes
at the edges (0, 1, either side of 64 KiB and 128 KiB) often, and large payloads at
all. Run with -s to see the distribution."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

import pytest
from hypothesis import given, settings

from tests.conformance.test_fidelity import ANY_PAYLOAD
from tests.streams import EDGE_SIZES

DRAWS = 400
BOUNDS = (64, 65534, 131073)  # the largest size of each bucket but the last
BUCKETS = ("0-64 B", "65 B-64 KiB", "64-128 KiB", ">128 KiB")


@pytest.mark.timeout(120)
def test_payload_sizes_reach_the_edges_and_the_large() -> None:
    sizes: list[int] = []

    @settings(max_examples=DRAWS, database=None, derandomize=True)  # the same draws every run
    @given(payload=ANY_PAYLOAD)
    def draw(payload: bytes) -> None:
        sizes.append(len(payload))

    draw()
    edges = Counter(size for size in sizes if size in EDGE_SIZES)
    buckets = Counter(BUCKETS[bisect_left(BOUNDS, size)] for size in sizes)
    print(f"{len(sizes)} payloads, largest {max(sizes)} B; by size {dict(buckets)}; edges {dict(edges)}")
    assert set(edges) == set(EDGE_SIZES), f"edge sizes never drawn: {set(EDGE_SIZES) - set(edges)}"
    assert buckets[">128 KiB"] >= DRAWS // 50, "hardly any payload above 128 KiB"

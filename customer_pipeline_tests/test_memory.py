"""Freed memory goes back to the OS between the steps of an in-process run (customer_pipeline/memory.py)."""

import numpy as np

from customer_pipeline import memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_release_gives_freed_small_allocations_back():
    # many small blocks (below glibc's mmap threshold) stay mapped after they are freed, until trimmed
    blocks = [np.ones(1000) for _ in range(100_000)]  # ~800 MB of 8 KB blocks
    del blocks[:-1]  # keep the last one so the heap's top is pinned: only a trim can give the pages back
    before = _rss_bytes()
    assert memory.release()
    assert _rss_bytes() < before - 400 * 2**20

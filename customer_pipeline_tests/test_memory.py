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


class _Cycle:
    def __init__(self, payload):
        self.payload = payload
        self.me = self  # held only by itself once dropped: freed by a collection, not by reference counting


def test_a_large_process_collects_reference_cycles_before_trimming(monkeypatch):
    import gc

    gc.disable()  # the collector must not run on its own during the test
    try:
        _Cycle(np.ones(60_000_000))  # ~480 MB, unreachable but in a cycle
        monkeypatch.setattr(memory, "COLLECT_ABOVE_BYTES", 1 << 60)  # a small process: not collected
        held = _rss_bytes()
        memory.release()
        assert _rss_bytes() > held - 100 * 2**20
        monkeypatch.setattr(memory, "COLLECT_ABOVE_BYTES", 0)  # a large one: collected, then trimmed
        memory.release()
        assert _rss_bytes() < held - 400 * 2**20
    finally:
        gc.enable()

"""How the C allocator gives memory back to the system.

glibc serves a block at or above its mmap threshold from a mapping of its own, unmapped when freed; below it, from
the heap, which only shrinks from its top. The threshold starts at 128 KiB, and each time a mapped block is freed
glibc raises it to that block's size (up to 32 MiB). A service that moves bodies of about 100 KB (recordings,
uploads, attachment reads) so ends up taking them from the heap, where they fragment it and the resident memory
creeps up with the requests served (`bench/bench_soak.py`, docs/performance.md). Setting the threshold fixes it
and stops the raising, so those bodies are mapped and returned again.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# glibc's mallopt parameter M_MMAP_THRESHOLD (malloc.h).
_M_MMAP_THRESHOLD = -3


def pin_mmap_threshold(threshold: int) -> bool:
    """Fix the C allocator's mmap threshold at ``threshold`` bytes; False when left as it is (``threshold`` 0, or a
    C library without glibc's ``mallopt``)."""
    if threshold <= 0:
        return False
    try:
        # The process's own symbols, which include the C library's (ctypes.util.find_library would run ldconfig).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        log.info("no glibc mallopt here: the allocator's mmap threshold is left as it is")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not mallopt(_M_MMAP_THRESHOLD, threshold):
        log.warning("the C allocator refused an mmap threshold of %d bytes: it is left as it is", threshold)
        return False
    return True

"""Give the C allocator's free memory back to the system after an index update.

An update in a serving process (the corpus watcher, an upload) allocates and frees a lot of
native memory in a few seconds: the new articles' batches through the embedding runtime, the new
generation's stores read while the old one still serves. glibc keeps what is freed inside its
heaps (up to 8 per core, shared by the threads), where live blocks around it keep it from
being returned: measured with `bench/soak.py`, such free memory made the resident size of a
server jump by 15-35 MB at some updates and never come down, while the memory in use moved by a
few MB. `malloc_trim(0)` returns the free pages of every heap (0.6-2 ms after a seed update, for
an update of 0.14-0.29 s). A no-op where the C library has no `malloc_trim` (macOS, Windows,
musl).
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; True when the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

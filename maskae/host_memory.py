"""Host allocator setting for training on CPU (glibc malloc).

XLA allocates each step's temporaries as one block (about 240 MB for the paper model at 256 px,
batch 32). glibc serves a block that large with a fresh mmap and unmaps it when freed, so every
step page-faults it in again: on a 2-core machine about a fifth of the step's CPU time. With one
arena, no mmap and no trimming, the freed block stays in the heap and the next step reuses it;
the cost is that the process keeps its peak heap.
"""

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # glibc <malloc.h>
_KEEP_UP_TO = 2**31 - 1  # bytes of free heap top kept instead of returned (mallopt takes an int)


def reuse_freed_memory() -> bool:
  """Makes glibc malloc keep and reuse freed blocks (one arena, no mmap, no trimming).

  Call it early, before other threads allocate. Returns False (and changes nothing) where the C
  library is not glibc.
  """
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # only glibc has it (musl's mallopt is a no-op)
  except (OSError, AttributeError):
    return False
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_UP_TO))
  return all(libc.mallopt(option, value) == 1 for option, value in settings)

"""The allocator setting that lets XLA's per-step temporaries be reused instead of re-faulted."""

import subprocess
import sys

import pytest

# Writes a 256 MiB malloc block, frees it, writes a new one and prints that one's page faults.
_REALLOCATE = """
import ctypes, resource, sys
from maskae import host_memory
if sys.argv[1] == "reuse":
  assert host_memory.reuse_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
size = 2**28
block = libc.malloc(size)
ctypes.memset(block, 1, size)
libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size)
ctypes.memset(block, 1, size)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
_PAGES = 2**28 // 4096


def _faults(mode: str) -> int:
  result = subprocess.run([sys.executable, "-c", _REALLOCATE, mode], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc setting")
def test_freed_block_is_reused_without_page_faults():
  assert _faults("default") > _PAGES // 2  # glibc maps a fresh block: every page faults again
  assert _faults("reuse") < _PAGES // 20

"""The process a step runs in (robustgen.cli)."""

import platform
import subprocess
import sys

import pytest

# In a fresh process: write a 24 MiB block from malloc, free it, and report how much of it the process still holds
# (resident pages, in MiB).
HELD = """
import ctypes, sys
from robustgen import cli
if sys.argv[1] == "kept":
    assert cli.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]


def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20


before = resident()
block = libc.malloc(24 << 20)
ctypes.memset(block, 1, 24 << 20)
libc.free(block)
print(resident() - before)
"""


def _held(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", HELD, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_freed_memory_stays_with_the_process():
    # glibc's defaults map a 24 MiB block on its own and unmap it on free (its pages are zeroed again when the
    # next one is touched); kept, the block comes from the heap and stays there for the next allocation
    assert abs(_held("default")) < 2
    assert _held("kept") > 23

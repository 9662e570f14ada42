"""rt_jax.host_memory: freed blocks are reused without page faults once the setting is applied."""

import os
import subprocess
import sys

import pytest

# In a fresh process, with glibc's malloc: allocate and touch 256 MB, free it, allocate and touch it again; print
# whether the setting was applied and the page faults of the second allocation.
PROBE = """
import ctypes, ctypes.util, resource
from rt_jax import host_memory
applied = host_memory.keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 256 << 20
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(opt_out: bool):
    env = dict(os.environ)
    env.pop("RT_JAX_KEEP_FREED_MEMORY", None)
    if opt_out:
        env["RT_JAX_KEEP_FREED_MEMORY"] = "0"
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc allocator setting")
def test_freed_memory_is_reused_without_page_faults():
    applied, faults = _probe(opt_out=False)
    assert applied
    assert faults < 1000  # 256 MB in 4 KB pages would be 65,536 faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc allocator setting")
def test_opt_out_leaves_the_allocator_alone():
    applied, faults = _probe(opt_out=True)
    assert not applied
    assert faults > 10000  # glibc unmapped the freed block: touching it again faults

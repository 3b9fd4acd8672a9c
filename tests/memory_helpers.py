"""Run a snippet in a fresh interpreter under an address-space cap, to test memory bounds.

The cap is counted from what the interpreter already maps after importing torch and the
genphys modules under test and running one backward pass (``VmSize``), so ``extra_mb`` is
the memory the snippet itself may add. A snippet
that needs more fails with ``MemoryError`` or a ``RuntimeError`` from the allocator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PRELUDE = """
import resource
import torch
import genphys  # noqa: F401
# what a snippet maps anyway, before the cap is measured: the modules it imports and
# autograd's worker thread (its stack and allocator arena), started by a first backward
import genphys.dbm, genphys.dbn, genphys.ebm, genphys.gaussian_rbm, genphys.grid  # noqa: E401
import genphys.pseudolikelihood, genphys.rbm  # noqa: E401
torch.set_num_threads(1)
torch.ones(1, requires_grad=True).sum().backward()

def _vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")

_cap = _vm_bytes() + {extra_mb} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (_cap, _cap))
"""


def run_capped(code: str, extra_mb: int, *, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``code`` with at most ``extra_mb`` MiB more address space than after the imports."""
    source = PRELUDE.format(extra_mb=int(extra_mb)) + textwrap.dedent(code) + '\nprint("DONE")\n'
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="1")
    return subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def assert_fits(code: str, extra_mb: int, *, timeout: float = 120.0) -> str:
    """Assert that ``code`` runs to its end under the cap; return its standard output."""
    result = run_capped(code, extra_mb, timeout=timeout)
    assert result.returncode == 0 and "DONE" in result.stdout, (
        f"did not fit in {extra_mb} MiB:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    return result.stdout

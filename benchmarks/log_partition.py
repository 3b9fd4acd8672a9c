"""Time and peak memory of the exact log Z of an RBM with 64 visible units.

Run: ``python benchmarks/log_partition.py [--threads N]``. Each size runs in a fresh
subprocess so that its peak resident memory (``ru_maxrss``) is its own; the table also
shows the memory above the interpreter's baseline (torch imported, model built).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
from genphys.rbm import BernoulliRBM, log_partition_exact
n_visible, n_hidden, threads, repeats = map(int, sys.argv[1:5])
dtype = getattr(torch, sys.argv[5])
torch.set_num_threads(threads)
rbm = BernoulliRBM(n_visible, n_hidden, seed=0, weight_scale=0.5, dtype=dtype)
with torch.no_grad():
    rbm.a.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    rbm.b.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(2))
    log_partition_exact(BernoulliRBM(n_visible, 4, seed=0, dtype=dtype))  # warm up kernels
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = log_partition_exact(rbm)
        times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n_hidden": n_hidden, "best_s": min(times), "log_z": value.item(),
                  "peak_mb": peak / 1024, "extra_mb": (peak - baseline) / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-visible", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 20, 24])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="dtype of the model (the sums always run in float64)",
    )
    args = parser.parse_args()
    print(
        f"exact log Z, n_visible = {args.n_visible}, torch threads = {args.threads}, "
        f"model dtype {args.dtype}"
    )
    print(
        f"{'n_hidden':>8} {'states':>12} {'best time [s]':>14} {'peak RSS [MB]':>14} "
        f"{'above baseline [MB]':>20} {'log Z':>14}"
    )
    for n_hidden in args.hidden:
        repeats = 3 if n_hidden <= 20 else 1
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(args.n_visible),
                str(n_hidden),
                str(args.threads),
                str(repeats),
                args.dtype,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        row = json.loads(out.stdout)
        print(
            f"{n_hidden:>8} {2**n_hidden:>12,} {row['best_s']:>14.3f} {row['peak_mb']:>14.0f} "
            f"{row['extra_mb']:>20.0f} {row['log_z']:>14.6f}"
        )


if __name__ == "__main__":
    main()

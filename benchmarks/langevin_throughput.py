"""Throughput of the Langevin samplers in genphys.langevin: chain steps per second.

One chain step is one transition of one chain (one gradient of log p per chain for ULA; one
gradient plus the accept/reject test for MALA). Targets: a 2D ring of Gaussians (exact
log-density from genphys.mixtures) and an 8 x 8 energy network (genphys.ebm.EnergyCNN,
parameters frozen), for several numbers of parallel chains.

Run:  python benchmarks/langevin_throughput.py [--threads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import time

import torch

from genphys import ebm, langevin, mixtures


def _rate(step, log_prob, x0, step_size, *, min_seconds: float) -> tuple[float, float]:
    """Chain steps per wall second and per CPU second (CPU is the better measure when busy)."""
    generator = torch.Generator(device=x0.device).manual_seed(0)
    state = langevin.init(log_prob, x0)
    state = step(state, log_prob, step_size, generator)  # warm-up
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        state = step(state, log_prob, step_size, generator)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 3:
            cpu = time.process_time() - cpu_start
            n = calls * x0.shape[0]
            return n / elapsed, n / max(cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per row")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU\n")

    ring = mixtures.ring()
    cnn = ebm.EnergyCNN(seed=0).requires_grad_(False)
    targets = [
        ("2D ring (float64)", ring.log_prob, 2, torch.float64, 0.01),
        ("8x8 CNN energy (float32)", ebm.log_prob_of(cnn), 64, torch.float32, 1e-3),
    ]
    print(f"{'target':26s} {'method':>6s} {'chains':>7s} {'steps/s':>12s} {'per CPU-s':>12s}")
    for name, log_prob, dim, dtype, step_size in targets:
        for method, step in (("ula", langevin.ula_step), ("mala", langevin.mala_step)):
            for n_chains in (1, 64, 1024):
                x0 = torch.zeros(n_chains, dim, dtype=dtype)
                wall, cpu = _rate(step, log_prob, x0, step_size, min_seconds=args.seconds)
                print(f"{name:26s} {method:>6s} {n_chains:7d} {wall:12.0f} {cpu:12.0f}")


if __name__ == "__main__":
    main()

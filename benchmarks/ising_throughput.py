"""Throughput of the Ising samplers in genphys.ising: spin updates per second.

Checkerboard Metropolis: one sweep visits every spin once, so the rate is
``n_chains * L * L * n_sweeps / seconds`` attempted updates. Wolff: one step flips one
cluster per chain; we report steps per second and flipped spins per second at
T_c, where clusters are largest relative to the lattice (a Wolff step examines the
whole lattice when it draws the Fortuin–Kasteleyn bonds, so its cost does not depend
on the cluster size).

Run:  python benchmarks/ising_throughput.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from genphys import ising


def _time(step, spins, beta, generator, *, min_seconds: float) -> tuple[float, float, float]:
    """Wall and CPU seconds per call (timed alone), and the mean fraction of spins a call changes.

    CPU time (of this process, all its threads) is the better measure on a busy machine.
    """
    spins = step(spins, beta, generator)  # warm-up
    changed = 0.0
    for _ in range(5):  # untimed: how many spins does one call flip?
        new = step(spins, beta, generator)
        changed += float((new != spins).double().mean()) / 5
        spins = new
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        spins = step(spins, beta, generator)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 3:
            cpu = time.process_time() - cpu_start
            return elapsed / calls, cpu / calls, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per row")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    beta_c = ising.BETA_CRITICAL
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float64, CPU\n")

    print("Checkerboard Metropolis at T_c")
    print(
        f"{'L':>4} {'chains':>7} {'ms/sweep':>10} {'spin updates/s':>16} "
        f"{'per CPU-s':>12} {'accepted':>9}"
    )
    for L, n_chains in [(16, 1), (16, 64), (16, 1024), (32, 1), (32, 64), (32, 256), (64, 64)]:
        spins = ising.sample(L, ising.T_CRITICAL, n_chains, seed=1, burn_in=20)
        seconds, cpu, accepted = _time(
            ising.metropolis_sweep, spins, beta_c, generator, min_seconds=args.seconds
        )
        n = n_chains * L * L
        print(
            f"{L:>4} {n_chains:>7} {1e3 * seconds:>10.3f} {n / seconds:>16.3e} "
            f"{n / cpu:>12.3e} {accepted:>9.3f}"
        )

    print("\nWolff at T_c (one cluster per chain per step)")
    print(
        f"{'L':>4} {'chains':>7} {'ms/step':>10} {'mean cluster/N':>15} "
        f"{'flipped spins/s':>16} {'per CPU-s':>12} {'sweep-equiv/s':>14}"
    )
    for L, n_chains in [(16, 1), (16, 64), (32, 1), (32, 16), (32, 64), (64, 16)]:
        spins = ising.sample(L, ising.T_CRITICAL, n_chains, seed=1, burn_in=20)
        seconds, cpu, fraction = _time(
            ising.wolff_step, spins, beta_c, generator, min_seconds=args.seconds
        )
        flipped = n_chains * L * L * fraction
        print(
            f"{L:>4} {n_chains:>7} {1e3 * seconds:>10.3f} {fraction:>15.3f} "
            f"{flipped / seconds:>16.3e} {flipped / cpu:>12.3e} "
            f"{flipped / seconds / (n_chains * L * L):>14.1f}"
        )

    print("\nising.sample: 4000 samples (burn-in 100, thin 5, 64 chains)")
    print(f"{'L':>4} {'T':>6} {'wall s':>8} {'CPU s':>8}")
    for L in (8, 16, 32):
        for T in (1.5, ising.T_CRITICAL, 3.5):
            start, cpu_start = time.perf_counter(), time.process_time()
            ising.sample(L, T, 4000, seed=0)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            print(f"{L:>4} {T:>6.3f} {wall:>8.2f} {cpu:>8.2f}")


if __name__ == "__main__":
    main()

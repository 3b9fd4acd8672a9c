"""Variational autoregressive networks on the Ising model: cost, F_q against Kaufman, samplers.

Run: ``python benchmarks/autoregressive_free_energy.py [--sizes 8 16] [--steps 400]
[--threads 1] [--device cpu]``. Prints three tables:

1. training time per step (sampling a batch + the score-function step) and exact samples per
   second of the model, for each lattice size;
2. after ``--steps`` training steps at each temperature: the batch estimate of F_q/N (an
   upper bound), the importance-weighted F/N with its standard error, Kaufman's exact F/N,
   and the effective sample size of the weights;
3. local Metropolis, Wolff and the learned proposal at T_c (acceptance, integrated
   autocorrelation times of E and |m| in steps, milliseconds per step, and independent
   samples per second, which compares them at equal wall time).

Explained in chapter 17 (``sec-variational-free-energy``).
"""

from __future__ import annotations

import argparse
import time

import torch

from genphys import autoregressive as ar
from genphys import ising


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument(
        "--temperatures", type=float, nargs="+", default=[1.8, ising.T_CRITICAL, 3.0]
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-hidden", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-samplers", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, threads = {args.threads}, device = {device}, "
        f"batch = {args.batch_size}, n_hidden = {args.n_hidden}, steps = {args.steps}"
    )

    # 1. cost
    print("\n1. cost")
    print(f"{'L':>4} {'N':>6} {'ms / training step':>19} {'samples / s':>12}")
    for L in args.sizes:
        model = ar.AutoregressiveModel(L, n_hidden=args.n_hidden, z2_symmetric=True, seed=0,
                                       device=device)  # fmt: skip
        ar.train_variational(model, 2.5, n_steps=3, batch_size=args.batch_size, seed=1)  # warm up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        history = ar.train_variational(model, 2.5, n_steps=20, batch_size=args.batch_size, seed=2)
        per_step = (time.perf_counter() - start) / len(history)
        start = time.perf_counter()
        model.sample(4096, seed=3)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = 4096 / (time.perf_counter() - start)
        print(f"{L:4d} {L * L:6d} {1e3 * per_step:19.2f} {rate:12.0f}")

    # 2. F_q against Kaufman
    print("\n2. free energy per spin after training (importance estimate from 8192 draws)")
    print(
        f"{'L':>4} {'T':>6} {'train [s]':>9} {'F_q/N batch':>12} {'F_IS/N':>10} {'± se':>9} "
        f"{'F/N Kaufman':>12} {'F_q - F':>9} {'(F_IS - F)/se':>13} {'ESS/n':>6}"
    )
    trained = {}
    for L in args.sizes:
        for T in args.temperatures:
            model = ar.AutoregressiveModel(L, n_hidden=args.n_hidden, z2_symmetric=True, seed=0,
                                           device=device)  # fmt: skip
            start = time.perf_counter()
            history = ar.train_variational(
                model, T, n_steps=args.steps, batch_size=args.batch_size, lr=2e-2, seed=1
            )
            seconds = time.perf_counter() - start
            est = ar.importance_estimates(model, T, 8192, seed=2)
            exact = -T * ising.log_partition_kaufman(L, T) / L**2
            f_q = est["variational_free_energy_per_spin"]
            f_is, se = est["free_energy_per_spin"], est["free_energy_per_spin_se"]
            print(
                f"{L:4d} {T:6.3f} {seconds:9.1f} {history['free_energy_per_spin'][-1]:12.5f} "
                f"{f_is:10.5f} {se:9.5f} {exact:12.5f} {f_q - exact:9.5f} "
                f"{(f_is - exact) / se:13.2f} {est['effective_sample_size'] / 8192:6.3f}"
            )
            trained[L, T] = model

    # 3. samplers at T_c
    if args.skip_samplers:
        return
    T_c = min(args.temperatures, key=lambda t: abs(t - ising.T_CRITICAL))
    print(f"\n3. samplers at T = {T_c:.4f}, 16 chains each")
    print(
        f"{'L':>4} {'sampler':>11} {'acceptance':>10} {'tau_E':>7} {'tau_|m|':>8} "
        f"{'ms/step':>8} {'indep./s':>9} {'E/N':>8} {'± se':>7} {'E/N exact':>10} {'z':>6} {'R-hat':>6}"
    )
    for L in args.sizes:
        model = trained[L, T_c]
        out = ar.sampler_comparison(
            model, T_c, n_steps={"metropolis": 3000, "wolff": 600, "learned": 600}, seed=5
        )
        beta, h = 1.0 / T_c, 1e-5  # exact E/N = -d log Z / d beta / N (Kaufman)
        e_exact = -(
            ising.log_partition_kaufman(L, 1.0 / (beta + h))
            - ising.log_partition_kaufman(L, 1.0 / (beta - h))
        ) / (2 * h * L**2)
        for name, r in out.items():
            z = (r["energy_per_spin"] - e_exact) / r["energy_per_spin_se"]
            print(
                f"{L:4d} {name:>11} {r['acceptance']:10.3f} {r['tau_energy']:7.2f} "
                f"{r['tau_abs_magnetization']:8.2f} {1e3 * r['seconds_per_step']:8.2f} "
                f"{r['independent_per_second']:9.0f} {r['energy_per_spin']:8.4f} "
                f"{r['energy_per_spin_se']:7.4f} {e_exact:10.4f} {z:6.1f} {r['split_rhat']:6.3f}"
            )


if __name__ == "__main__":
    main()

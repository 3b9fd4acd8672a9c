"""AIS against the exact log Z of an RBM trained on the binarised digits (n_hidden = 20).

Trains a 64 x 20 RBM with CD-1, computes log Z exactly (2**20 hidden states), then runs
:func:`genphys.ais.log_partition_ais` with its default settings for several seeds and
prints, for each run, the error against the exact value, the reported standard error,
their ratio (z-score), the effective sample size and the wall time. A last table shows
how the standard error and the time scale with the number of temperatures.

Targets: the bias (mean error over the runs) within 2 of its standard errors, every
SE <= 0.05 nats, under 30 s per run on a 2-core CPU. The ratios error/SE should have
mean 0 and standard deviation 1 if the reported standard errors are honest.

Usage::

    python benchmarks/ais_vs_exact.py [--seeds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from genphys.ais import DEFAULT_CHAINS, DEFAULT_TEMPERATURES, ais_run
from genphys.data import load_digits_binary
from genphys.rbm import log_likelihood_exact, log_partition_exact
from genphys.training import CD, initialize_rbm, train_rbm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="independent AIS runs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--epochs", type=int, default=30, help="CD-1 epochs of the model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    digits = load_digits_binary()
    rbm = initialize_rbm(digits.x_train, 20, seed=0)
    began = time.perf_counter()
    train_rbm(
        rbm,
        digits.x_train,
        n_epochs=args.epochs,
        negative_phase=CD(k=1),
        batch_size=20,
        learning_rate=0.02,
        seed=0,
    )
    train_seconds = time.perf_counter() - began

    with torch.no_grad():
        began = time.perf_counter()
        log_z = float(log_partition_exact(rbm))
        exact_seconds = time.perf_counter() - began
        test_ll = float(log_likelihood_exact(rbm, digits.x_test, log_z=torch.tensor(log_z)))
    print(f"model: 64 x 20 RBM, CD-1 for {args.epochs} epochs ({train_seconds:.1f} s)")
    print(f"exact log Z = {log_z:.4f} ({exact_seconds:.2f} s), test log-likelihood {test_ll:.3f}")
    print(f"AIS defaults: n_chains = {DEFAULT_CHAINS}, n_temperatures = {DEFAULT_TEMPERATURES}")
    print(f"threads: {torch.get_num_threads()}\n")

    print(
        f"{'seed':>4} {'log Z_hat':>11} {'error':>9} {'SE':>8} {'error/SE':>9} {'ESS':>7} {'time [s]':>9}"
    )
    errors, ses, times = [], [], []
    for seed in range(args.seeds):
        began = time.perf_counter()
        run = ais_run(rbm, seed=seed)
        seconds = time.perf_counter() - began
        estimate, se, ess = (float(v) for v in run.estimate)
        errors.append(estimate - log_z)
        ses.append(se)
        times.append(seconds)
        print(
            f"{seed:4d} {estimate:11.4f} {estimate - log_z:9.4f} {se:8.4f} "
            f"{(estimate - log_z) / se:9.2f} {ess:7.1f} {seconds:9.2f}"
        )
    errors, ses = np.array(errors), np.array(ses)
    z = errors / ses
    bias = errors.mean()  # the systematic error, estimated from all runs
    bias_se = ses.mean() / np.sqrt(len(errors))  # its standard error, from the reported SEs
    print(
        f"\nbias (mean error) {bias:+.4f} +- {bias_se:.4f}; mean SE {ses.mean():.4f}; "
        f"error/SE: mean {z.mean():+.2f}, sd {z.std(ddof=1) if len(z) > 1 else np.nan:.2f} "
        f"(calibrated: 0 and 1); max time {max(times):.2f} s"
    )
    ok = abs(bias) <= 2 * bias_se and ses.max() <= 0.05 and max(times) < 30
    print(
        "targets (|bias| <= 2 SE of the bias, every SE <= 0.05, < 30 s):",
        "met" if ok else "NOT met",
    )

    print("\nscaling with the number of temperatures (seed 0):")
    print(f"{'K':>6} {'n_chains':>8} {'error':>9} {'SE':>8} {'time [s]':>9}")
    for n_temperatures in (250, DEFAULT_TEMPERATURES, 4 * DEFAULT_TEMPERATURES):
        began = time.perf_counter()
        estimate, se, _ = (
            float(v) for v in ais_run(rbm, n_temperatures=n_temperatures, seed=0).estimate
        )
        seconds = time.perf_counter() - began
        print(
            f"{n_temperatures:6d} {DEFAULT_CHAINS:8d} {estimate - log_z:9.4f} {se:8.4f} {seconds:9.2f}"
        )


if __name__ == "__main__":
    main()

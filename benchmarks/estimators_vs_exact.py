"""Pseudo-likelihood and NCE against exact maximum likelihood on an RBM small enough to enumerate.

A 6 x 2 binary RBM with weights of size 1.5 is the truth. For each seed, 1000 exact samples
are drawn from it (by enumeration of its 64 visible states) and three models of the same
size are fitted: exact maximum likelihood (:class:`genphys.training.ExactNegative`),
maximum pseudo-likelihood (:func:`genphys.pseudolikelihood.train_pseudo_likelihood`) and
NCE with independent-Bernoulli noise at the data means (5 noise draws per data point,
mini-batches of 100, ``--nce-epochs`` epochs, c started at the exact log Z = 8 log 2 of the
model with W = 0, or at 0 with ``--c-start zero``) (:func:`genphys.nce.train_nce`).
The table gives, over the seeds, the mean and standard error of KL(truth || fit), of its
excess over the maximum-likelihood fit of the same data (paired), and for NCE of the error
of the learned c against the fit's exact log Z. Chapter 9 runs the same comparison with
three seeds. A second table compares exact and denoising score matching with exact maximum
likelihood for a one-dimensional Gaussian-Bernoulli RBM (a mixture of four Gaussians), with
KL(truth || fit) by quadrature.

Usage::

    python benchmarks/estimators_vs_exact.py [--seeds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from genphys import gaussian_rbm, nce, pseudolikelihood, score_matching
from genphys.enumeration import binary_states
from genphys.grid import Grid
from genphys.rbm import BernoulliRBM, log_partition_exact
from genphys.training import ExactNegative, train_rbm


def truth_rbm() -> BernoulliRBM:
    g = torch.Generator().manual_seed(0)
    W = 1.5 * torch.randn(6, 2, generator=g, dtype=torch.float64)
    a = 0.5 * torch.randn(6, generator=g, dtype=torch.float64)
    b = 0.5 * torch.randn(2, generator=g, dtype=torch.float64)
    return BernoulliRBM.from_parameters(W, a, b)


def log_p(rbm: BernoulliRBM, states: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return -rbm.free_energy(states) - log_partition_exact(rbm)


def fit_all(
    x: torch.Tensor, seed: int, nce_epochs: int, c_start: float
) -> dict[str, tuple[BernoulliRBM, float]]:
    out = {}
    began = time.perf_counter()
    ml = BernoulliRBM(6, 2, seed=seed, weight_scale=0.1)
    train_rbm(ml, x, n_epochs=150, negative_phase=ExactNegative(), batch_size=len(x),
              learning_rate=0.5, compute_dtype=None, seed=seed)  # fmt: skip
    out["maximum likelihood"] = (ml, time.perf_counter() - began)
    began = time.perf_counter()
    pl = BernoulliRBM(6, 2, seed=seed, weight_scale=0.1)
    pseudolikelihood.train_pseudo_likelihood(pl, x, n_epochs=100, batch_size=len(x),
                                             learning_rate=0.05, seed=seed)  # fmt: skip
    out["pseudo-likelihood"] = (pl, time.perf_counter() - began)
    began = time.perf_counter()
    rbm = BernoulliRBM(6, 2, seed=seed, weight_scale=0.1)
    model = nce.NCEModel(rbm, rbm.free_energy, log_z=c_start)
    noise = nce.BernoulliNoise(x.mean(0).clamp(0.05, 0.95))
    nce.train_nce(model, x, noise, n_epochs=nce_epochs, noise_ratio=5, batch_size=100,
                  learning_rate=0.03, seed=seed)  # fmt: skip
    out["NCE"] = (rbm, time.perf_counter() - began)
    return out, model.log_z.item() - log_partition_exact(rbm).item()


def continuous_table(n_seeds: int) -> None:
    """Score matching (exact and denoising) against exact ML for a 1D Gaussian-Bernoulli RBM."""
    truth = gaussian_rbm.GaussianBernoulliRBM.from_parameters(
        [[2.0, -1.5]], [0.0], [-0.5, 0.3], [math.log(0.36)]
    )
    grid = Grid(-12.0, 12.0, 4000, dim=1)
    with torch.no_grad():
        log_p = grid.log_density(-truth.free_energy(grid.points))  # (C,)
        cells = grid.cell_probabilities(-truth.free_energy(grid.points))  # (C,)
    kl, secs = {}, {}
    for seed in range(n_seeds):
        # exact samples: h from p(h) (4 states), then x from p(x | h)
        g = torch.Generator().manual_seed(2000 + seed)
        h_all = binary_states(2)
        with torch.no_grad():
            p_h = torch.softmax(truth.hidden_log_weight(h_all), 0)
            h = h_all[torch.multinomial(p_h, 1000, replacement=True, generator=g)]
            x = truth.sample_x_given_h(h, generator=g)
        common = {"n_epochs": 150, "batch_size": 250, "learning_rate": 0.05, "seed": seed}
        for name in ("maximum likelihood", "score matching", "denoising SM (sigma 0.1)"):
            model = gaussian_rbm.GaussianBernoulliRBM(1, 2, seed=seed, weight_scale=0.5)
            began = time.perf_counter()
            if name == "maximum likelihood":
                gaussian_rbm.train_gaussian_rbm(model, x, exact=True, **common)
            elif name == "score matching":
                score_matching.train_score_matching(model, model.free_energy, x, **common)
            else:
                score_matching.train_score_matching(
                    model, model.free_energy, x, method="denoising", sigma=0.1, **common
                )
            secs.setdefault(name, []).append(time.perf_counter() - began)
            with torch.no_grad():
                log_q = grid.log_density(-model.free_energy(grid.points))
            kl.setdefault(name, []).append(float((cells * (log_p - log_q)).sum()))
    ml = np.array(kl["maximum likelihood"])
    n = n_seeds
    print(f"\n1D Gaussian-Bernoulli RBM (1 x 2), {n} data sets of 1000 samples, 600 Adam steps")
    print(f"{'estimator':26s} {'KL(truth||fit)':>18s} {'excess over ML':>18s} {'seconds':>8s}")
    for name, values in kl.items():
        v = np.array(values)
        d = v - ml
        print(f"{name:26s} {v.mean():9.4f} ± {v.std(ddof=1) / n**0.5:.4f}"
              f" {d.mean():9.4f} ± {d.std(ddof=1) / n**0.5:.4f} {np.mean(secs[name]):8.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="independent data sets")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--nce-epochs", type=int, default=30, help="NCE epochs (batches of 100)")
    parser.add_argument(
        "--c-start", choices=("independent", "zero"), default="independent",
        help="NCE's starting c: log Z of the W = 0 model (8 log 2) or 0",
    )  # fmt: skip
    args = parser.parse_args()
    c_start = 8 * math.log(2.0) if args.c_start == "independent" else 0.0
    torch.set_num_threads(args.threads)
    truth = truth_rbm()
    states = binary_states(6)
    lp_true = log_p(truth, states)
    kl, secs, c_err = {}, {}, []
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(1000 + seed)
        x = states[torch.multinomial(lp_true.exp(), 1000, replacement=True, generator=g)]
        fits, c_error = fit_all(x, seed, args.nce_epochs, c_start)
        c_err.append(c_error)
        for name, (rbm, seconds) in fits.items():
            value = float((lp_true.exp() * (lp_true - log_p(rbm, states))).sum())
            kl.setdefault(name, []).append(value)
            secs.setdefault(name, []).append(seconds)
    ml = np.array(kl["maximum likelihood"])
    n = args.seeds
    print(f"{n} data sets of 1000 samples; mean ± standard error over the data sets")
    print(f"{'estimator':20s} {'KL(truth||fit)':>18s} {'excess over ML':>18s} {'seconds':>8s}")
    for name, values in kl.items():
        v = np.array(values)
        d = v - ml
        print(f"{name:20s} {v.mean():9.4f} ± {v.std(ddof=1) / n**0.5:.4f}"
              f" {d.mean():9.4f} ± {d.std(ddof=1) / n**0.5:.4f} {np.mean(secs[name]):8.2f}")  # fmt: skip
    c = np.array(c_err)
    print(f"NCE: c - log Z = {c.mean():.4f} ± {c.std(ddof=1) / n**0.5:.4f}")
    continuous_table(args.seeds)


if __name__ == "__main__":
    main()

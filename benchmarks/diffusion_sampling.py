"""Sampling time and quality of the diffusion samplers against the number of steps, on the 2D ring.

Every sampler is driven by the *exact* noise prediction of the ring mixture
(:func:`genphys.diffusion.eps_from_score`), so the table measures the samplers alone:
ancestral DDPM with all T = 1000 steps, DDIM with 100/50/20/10 steps and Heun's method for
the probability-flow ODE with 25/10/5 steps. Quality is the Jensen-Shannon divergence
between the samples' histogram on a 50 x 50 grid and the exact cell probabilities, next to
the floor of the same statistic for exact samples of the same size (mean and standard
deviation over repeats). A second table starts the course's T = 300 schedule from N(0, I)
and from the exact q_T, on an off-centre mixture whose mean survives in x_T.

Usage::

    python benchmarks/diffusion_sampling.py [--n 4000] [--repeats 3] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from genphys import diffusion
from genphys.diffusion_samplers import ddim_sample, ddpm_sample, probability_flow_sample
from genphys.grid import Grid, js_divergence
from genphys.mixtures import ring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="samples per run")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per sampler")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where the samplers run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = ring(8, 2.0, 0.2)
    betas = diffusion.linear_schedule(1000)
    score = diffusion.mixture_score(data, betas)
    device = torch.device(args.device)

    def exact_eps(x, t):  # the mixture's exact score runs on the CPU in float64
        return diffusion.eps_from_score(score, betas)(x.cpu(), t).to(x.device)

    grid = Grid(-3.5, 3.5, 50)
    cells = grid.cell_probabilities(data.log_prob(grid.points))

    def jsd(x: torch.Tensor) -> float:
        return js_divergence(grid.histogram(x.cpu())[0], cells)

    floor = [jsd(data.sample(args.n, seed=100 + s)) for s in range(10)]
    print(f"ring of 8 Gaussians, n = {args.n} samples, T = 1000 linear schedule, {device}")
    print(
        f"floor (exact samples): JSD {statistics.mean(floor):.4f} ± {statistics.stdev(floor):.4f}"
    )
    print()
    print("sampler          evaluations   JSD (mean ± sd over seeds)   seconds per run")
    shape = (args.n, 2)
    runs = [
        ("DDPM 1000", 1000, lambda s: ddpm_sample(exact_eps, betas, shape, device=device, seed=s))
    ]
    for k in (100, 50, 20, 10):
        runs.append(
            (
                f"DDIM {k}",
                k,
                lambda s, k=k: ddim_sample(
                    exact_eps, betas, shape, n_steps=k, device=device, seed=s
                ),
            )
        )
    for k in (25, 10, 5):
        runs.append(
            (
                f"ODE Heun {k}",
                2 * k - 1,
                lambda s, k=k: probability_flow_sample(
                    exact_eps, betas, shape, n_steps=k, device=device, seed=s
                ),
            )
        )
    for name, evaluations, run in runs:
        values, seconds = [], []
        for s in range(args.repeats):
            began = time.perf_counter()
            x = run(s)
            seconds.append(time.perf_counter() - began)
            values.append(jsd(x))
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"{name:16s} {evaluations:8d}      {statistics.mean(values):.4f} ± {spread:.4f}"
            f"              {statistics.mean(seconds):7.2f}"
        )

    print()
    print("the course's schedule: T = 300, beta from 1e-4 to 0.02, DDPM with the exact score,")
    print("on an off-centre mixture of three Gaussians (weights 0.2, 0.5, 0.3, mean (0.55, 0.15))")
    skewed = diffusion.GaussianMixture(
        [0.2, 0.5, 0.3], [[-2.5, 0.0], [1.5, 1.5], [1.0, -2.0]], [0.4, 0.5, 0.3]
    )
    wide = Grid(-6.0, 6.0, 60)
    wide_cells = wide.cell_probabilities(skewed.log_prob(wide.points))
    se_mean = torch.sqrt(torch.diag(skewed.covariance()) / args.n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diffusion.IncompleteNoisingWarning)
        short = diffusion.linear_schedule(300, 1e-4, 0.02)
        short_eps = diffusion.eps_from_score(diffusion.mixture_score(skewed, short), short)
        ab_T = float(diffusion.alpha_bar(short)[-1])
        print(f"alpha_bar_T = {ab_T:.4f}, sqrt(alpha_bar_T) = {ab_T**0.5:.3f}")
        floor = [
            js_divergence(wide.histogram(skewed.sample(args.n, seed=300 + s))[0], wide_cells)
            for s in range(10)
        ]
        print(
            f"  floor            JSD {statistics.mean(floor):.4f} ± {statistics.stdev(floor):.4f}"
        )
        for name, start in (("from N(0, I)", None), ("from exact q_T", "exact")):
            values, shifts = [], []
            for s in range(args.repeats):
                x_T = None
                if start == "exact":
                    x_T = diffusion.diffuse(
                        skewed.sample(args.n, seed=200 + s), 300, short, seed=s
                    )[0]
                x = ddpm_sample(
                    short_eps, short, None if x_T is not None else shape, x_T=x_T, seed=s
                )
                values.append(js_divergence(wide.histogram(x)[0], wide_cells))
                shifts.append(((x.mean(0) - skewed.mean()) / se_mean).tolist())
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            shift = [round(statistics.mean(v[i] for v in shifts), 1) for i in range(2)]
            print(
                f"  {name:16s} JSD {statistics.mean(values):.4f} ± {spread:.4f}   "
                f"mean - exact mean, in standard errors: {shift}"
            )


if __name__ == "__main__":
    main()

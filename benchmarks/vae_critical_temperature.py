"""The critical temperature of the 2D Ising model from a VAE's latent, by finite-size scaling.

For each lattice size L (8, 16, 32 by default) Ising configurations are drawn with the
book's Monte Carlo (:func:`genphys.criticality.ising_scan`) at temperatures that are denser
near T_c; a VAE with one latent variable (:func:`genphys.vae.train_vae`) is trained on each
size with several training seeds, and the encoder mean z (centred on its mean over the
data set) serves as the order parameter. The same analysis is done on the magnetisation
per spin m of the same configurations. Prints:

1. the Binder cumulant crossings of consecutive sizes, for m and for z (each seed), with
   bootstrap standard errors over the configurations
   (:func:`genphys.criticality.binder_crossing`);
2. the susceptibility peaks per size and their extrapolation T(L) = T_c + a/L, with a
   bootstrap standard error;
3. the T_c estimates from the largest pair of sizes: m, and z averaged over the seeds with
   an error that adds in quadrature the bootstrap over configurations (mean of the seeds'
   variances) and the bootstrap over the training seeds (of their mean); each next to
   Onsager's T_c = 2/ln(1 + sqrt 2).

Usage::

    python benchmarks/vae_critical_temperature.py [--sizes 8 16 32] [--seeds 3]
        [--n-per-T 400] [--epochs 30] [--resamples 200] [--quick]

``--quick`` runs L = 8, 16 with one seed and fewer samples (a smoke test, about a minute).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch

from genphys.criticality import (
    binder_crossing,
    binder_cumulant,
    bootstrap,
    extrapolate_inverse_size,
    ising_scan,
    peak_temperature,
    susceptibility,
)
from genphys.ising import T_CRITICAL, magnetization
from genphys.vae import VAE, train_vae

#: Denser near T_c = 2.269: 17 temperatures between 1.8 and 3.0.
TEMPERATURES = np.round(
    np.concatenate([[1.8, 1.95, 2.05, 2.12], np.arange(2.16, 2.42, 0.03), [2.46, 2.55, 2.7, 3.0]]),
    3,
)


def latent_means(L, x, seed, epochs):
    """Train a one-latent VAE on x and return its centred encoder means, shape (n,)."""
    vae = VAE(L * L, 1, hidden=(64,), seed=seed, dtype=torch.float32)
    history = train_vae(vae, x, n_epochs=epochs, batch_size=64, learning_rate=2e-3, seed=seed + 1)
    with torch.no_grad():
        z = vae.encode(x)[0][:, 0].double().numpy()
    return z - z.mean(), history["train_elbo"][-1]


def split(values, T_of_row):
    return [values[T_of_row == t] for t in TEMPERATURES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-per-T", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", help="write the order parameters to this .npz file")
    parser.add_argument("--load", help="analyse the order parameters of this .npz file")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seeds, args.n_per_T, args.epochs, args.resamples = [8, 16], 1, 200, 20, 50
    torch.set_num_threads(1)
    sizes = sorted(args.sizes)
    print(f"sizes {sizes}, {len(TEMPERATURES)} temperatures {TEMPERATURES.tolist()}")
    print(
        f"{args.n_per_T} configurations per temperature, {args.seeds} training seeds, "
        f"{args.epochs} epochs, {args.resamples} bootstrap resamples\n"
    )

    m_by_T, z_by_T = {}, {}  # L -> list over T of arrays; z: L -> list over seeds
    if args.load:
        saved = np.load(args.load)
        args.seeds = int(saved["n_seeds"])
        for L in sizes:
            T_of_row = saved[f"T_{L}"]
            m_by_T[L] = split(saved[f"m_{L}"], T_of_row)
            z_by_T[L] = [split(saved[f"z_{L}_{s}"], T_of_row) for s in range(args.seeds)]
    arrays = {"n_seeds": args.seeds}
    for L in [] if args.load else sizes:
        start = time.perf_counter()
        x, T_of_row = ising_scan(L, TEMPERATURES, args.n_per_T, seed=L, dtype=torch.float32)
        t_data = time.perf_counter() - start
        T_of_row = T_of_row.numpy()
        m = magnetization((2 * x.double() - 1).reshape(-1, L, L), per_spin=True).numpy()
        m_by_T[L] = split(m, T_of_row)
        arrays[f"T_{L}"], arrays[f"m_{L}"] = T_of_row, m
        z_by_T[L] = []
        for s in range(args.seeds):
            start = time.perf_counter()
            z, elbo = latent_means(L, x, 100 * s, args.epochs)
            corr = np.corrcoef(z, m)[0, 1]
            z_by_T[L].append(split(z, T_of_row))
            arrays[f"z_{L}_{s}"] = z
            if args.save:
                np.savez(args.save, **arrays)
            print(
                f"L = {L:2d} seed {s}: data {t_data:5.1f} s, training "
                f"{time.perf_counter() - start:5.1f} s, ELBO {elbo:8.2f}, corr(z, m) {corr:+.4f}"
            )
    print()

    print("Binder cumulant per temperature (m, then z of seed 0)")
    print(
        "   T   "
        + "".join(f"  U_m(L={L:2d})" for L in sizes)
        + "".join(f"  U_z(L={L:2d})" for L in sizes)
    )
    for j, t in enumerate(TEMPERATURES):
        row = [binder_cumulant(m_by_T[L][j]) for L in sizes]
        row += [binder_cumulant(z_by_T[L][0][j]) for L in sizes]
        print(f"  {t:5.3f}" + "".join(f"  {u:10.4f}" for u in row))
    print()

    onsager = T_CRITICAL
    print(
        f"Binder crossings (Onsager T_c = {onsager:.4f}); error = bootstrap SE over configurations"
    )
    print("  pair     order parameter   T_cross ± SE        deviation     in SE")
    final = {}
    for small, large in itertools.pairwise(sizes):
        pair = f"{small:2d}/{large:2d}"

        def show(label, est, se, pair=pair):
            dev = est - onsager
            print(
                f"  {pair}    {label:16s}  {est:.4f} ± {se:.4f}   {100 * dev / onsager:+6.2f} %"
                f"   {dev / se:+6.2f}"
            )

        try:
            est, se = binder_crossing(
                TEMPERATURES, m_by_T[small], m_by_T[large], n_resamples=args.resamples, seed=1
            )
            show("m", est, se)
            final["m"] = (est, se)
        except ValueError as error:
            print(f"  {pair}    m                 no crossing: {error}")
        crossings, variances = [], []
        for s in range(args.seeds):
            try:
                est, se = binder_crossing(
                    TEMPERATURES,
                    z_by_T[small][s],
                    z_by_T[large][s],
                    n_resamples=args.resamples,
                    seed=2 + s,
                )
            except ValueError as error:
                print(f"  {pair}    z, seed {s}         no crossing: {str(error)[:90]}...")
                continue
            show(f"z, seed {s}", est, se)
            crossings.append(est)
            variances.append(se**2)
        if not crossings:
            continue
        if len(crossings) > 1:
            mean, se_seeds, _ = bootstrap(
                [np.array(crossings)], np.mean, n_resamples=args.resamples, seed=9
            )
        else:
            mean, se_seeds = crossings[0], 0.0
        se = math.sqrt(np.mean(variances) + se_seeds**2)
        show(f"z, {len(crossings)} seeds", mean, se)
        final["z"] = (mean, se)
    print()

    print(
        "Susceptibility peaks, extrapolated as T(L) = T_c + a/L; SE by bootstrap over "
        "configurations"
    )
    n_T = len(TEMPERATURES)

    def chi_peaks(*groups):
        peaks = []
        for i, L in enumerate(sizes):
            chi = [
                susceptibility(g, n_sites=L * L, T=float(t))
                for g, t in zip(groups[i * n_T : (i + 1) * n_T], TEMPERATURES, strict=True)
            ]
            peaks.append(peak_temperature(TEMPERATURES, chi))
        return peaks

    def chi_tc(*groups):
        return extrapolate_inverse_size(sizes, chi_peaks(*groups))[0]

    labels = [("m", [g for L in sizes for g in m_by_T[L]])]
    labels += [
        (f"z, seed {s}", [g for L in sizes for g in z_by_T[L][s]]) for s in range(args.seeds)
    ]
    for label, groups in labels:
        try:
            peaks = chi_peaks(*groups)
            est, se, _ = bootstrap(groups, chi_tc, n_resamples=args.resamples, seed=11)
        except ValueError as error:
            print(f"  {label:10s} no peak inside the range: {str(error)[:90]}...")
            continue
        print(
            f"  {label:10s} peaks "
            + ", ".join(f"{p:.3f}" for p in peaks)
            + f"  ->  T_c = {est:.4f} ± {se:.4f}  ({100 * (est - onsager) / onsager:+.2f} %)"
        )
    print()

    print(f"Estimates from the Binder crossing of the largest pair, {sizes[-2]}/{sizes[-1]}:")
    for label, (est, se) in final.items():
        dev = est - onsager
        verdict = "within 2 %" if abs(dev) <= 0.02 * onsager else "NOT within 2 %"
        inside = "within" if abs(dev) <= 2 * se else "outside"
        print(
            f"  {label}: T_c = {est:.4f} ± {se:.4f}, Onsager {onsager:.4f}: "
            f"{100 * dev / onsager:+.2f} % ({verdict}), {dev / se:+.2f} SE ({inside} 2 SE)"
        )


if __name__ == "__main__":
    main()

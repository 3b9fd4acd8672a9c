"""Every model family on the 4 x 4 Ising model at T = 1.5, T_c and 3.5, against the exact distribution.

The chapter's comparison (chapter 18) at all three temperatures and for several seeds, so that
the spread from seed to seed shows next to the differences between families. For each
temperature it draws 4000 exact training configurations and trains, with the chapter's
settings scaled by ``--budget`` (epochs or steps multiplied):

* an RBM with 12 hidden units, exact negative phase (``thermo.fit_rbm_exact_negative``);
* an RBM with 16 hidden units, CD-1 (``training.train_rbm``);
* a VAE with a Bernoulli decoder (``vae.train_vae``);
* a diffusion model on spins, sampled by DDIM with 50 steps, signs taken;
* a GAN with sigmoid output and instance noise 0.4, outputs thresholded at 1/2.

It prints one row per family and seed: parameters, training and sampling seconds, exact KL
(RBMs), exact or IWAE test log-likelihood, JSD and KL(q || p) of 4000 samples over all 2^16
states, and the deviation zeta of the four observables in jackknife standard errors; the
last row is the floor of 4000 exact samples.

Usage::

    python benchmarks/capstone.py [--seeds 2] [--budget 1.0] [--temperatures 1.5 2.269 3.5]
"""

from __future__ import annotations

import argparse
import time

import torch

import genphys.thermodynamics as thermo
from genphys import comparison, diffusion, gan, ising
from genphys.diffusion_samplers import ddim_sample
from genphys.training import CD, initialize_rbm, train_rbm
from genphys.vae import VAE, train_vae

L, N_TRAIN, N_TEST, N_GENERATED = 4, 4000, 2000, 4000
COLUMNS = ["family", "seed", "parameters", "train_s", "sample_s", "kl_exact", "test_ll", "JSD"]
COLUMNS += ["KL(q||p)", "zeta_e", "zeta_|m|", "zeta_c", "zeta_chi"]


def timed(function):
    start = time.perf_counter()
    out = function()
    return out, time.perf_counter() - start


def families(bits, spins, bits_test, spins_test, log_p, seed, budget):
    """Yield (name, model, train seconds, generated spins, extra columns) per family."""
    epochs = lambda n: max(1, round(n * budget))

    def rbm_scores(rbm):
        log_q = thermo.rbm_log_prob_exact(rbm).double()
        return dict(
            kl_exact=float(thermo.kl_divergence_exact(log_p, log_q)),
            test_ll=float(log_q[comparison.state_index(spins_test)].mean()),
        )

    fit, s = timed(lambda: thermo.fit_rbm_exact_negative(bits, 12, seed=seed, n_steps=epochs(500)))
    yield (
        "RBM exact-negative",
        fit.rbm,
        s,
        lambda: thermo.sample_rbm_spins(fit.rbm, 100, 40, seed=seed + 2),
        rbm_scores(fit.rbm),
    )

    rbm = initialize_rbm(bits, 16, seed=seed)
    _, s = timed(
        lambda: train_rbm(rbm, bits, n_epochs=epochs(30), negative_phase=CD(1), batch_size=100,
                          learning_rate=0.05, seed=seed + 1)
    )  # fmt: skip
    yield (
        "RBM CD-1",
        rbm,
        s,
        lambda: thermo.sample_rbm_spins(rbm, 100, 40, seed=seed + 2),
        (rbm_scores(rbm)),
    )

    vae = VAE(L * L, 4, hidden=(64,), seed=seed)
    _, s = timed(
        lambda: train_vae(vae, bits.double(), n_epochs=epochs(20), batch_size=64,
                          learning_rate=2e-3, seed=seed)
    )  # fmt: skip
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        iwae = float(vae.iwae_bound(bits_test.double(), k=200, generator=g).mean())
    yield (
        "VAE",
        vae,
        s,
        lambda: comparison.to_spins(vae.sample(N_GENERATED, generator=g), L, threshold=0.5),
        {"test_ll": iwae},
    )

    betas = diffusion.linear_schedule(1000)
    net = diffusion.MLPNoisePredictor(L * L, 1000, hidden=64, n_layers=3, embedding_dim=16,
                                      seed=seed + 7)  # fmt: skip
    _, s = timed(
        lambda: diffusion.train_diffusion(net, spins.reshape(-1, L * L).float(), betas,
                                          n_epochs=epochs(30), batch_size=128,
                                          learning_rate=3e-3, seed=seed + 8)
    )  # fmt: skip
    yield "diffusion", net, s, lambda: comparison.to_spins(
        ddim_sample(net, betas, (N_GENERATED, L * L), n_steps=50, dtype=torch.float32,
                    seed=seed + 9), L
    ), {}  # fmt: skip

    model = gan.GAN(L * L, 8, hidden=(64, 64), output="sigmoid", seed=seed)
    _, s = timed(
        lambda: gan.train_gan(model, bits.float(), n_epochs=epochs(15), batch_size=64,
                              learning_rate=1e-3, instance_noise=0.4, seed=seed)
    )  # fmt: skip
    yield (
        "GAN",
        model,
        s,
        lambda: comparison.to_spins(model.sample(N_GENERATED, seed=seed + 1), L, threshold=0.5),
        {},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument(
        "--temperatures", type=float, nargs="+", default=[1.5, ising.T_CRITICAL, 3.5]
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    short = ("zeta_e", "zeta_|m|", "zeta_c", "zeta_chi")
    for T in args.temperatures:
        log_p = thermo.boltzmann_log_prob_exact(L, T)
        spins = thermo.sample_boltzmann_exact(L, T, N_TRAIN, seed=0)
        spins_test = thermo.sample_boltzmann_exact(L, T, N_TEST, seed=1)
        bits = thermo.spins_to_bits(spins).reshape(-1, L * L)
        bits_test = thermo.spins_to_bits(spins_test).reshape(-1, L * L)
        rows = []
        for seed in range(args.seeds):
            for name, model, train_s, sample, extra in families(
                bits, spins, bits_test, spins_test, log_p, seed, args.budget
            ):
                with torch.no_grad():
                    generated, sample_s = timed(sample)
                observed = comparison.compare_observables(generated, T)
                divergences = comparison.empirical_divergences(generated, log_p)
                row = dict(family=name, seed=seed, train_s=train_s, sample_s=sample_s, **extra)
                row["parameters"] = comparison.count_parameters(model)
                row["JSD"], row["KL(q||p)"] = divergences["jsd"], divergences["kl_samples_exact"]
                for key, col in zip(ising.OBSERVABLE_KEYS, short, strict=True):
                    row[col] = observed[key]["z"]
                rows.append(row)
        floor = comparison.divergence_floor(L, T, N_GENERATED, n_repeats=5, seed=100)
        observed = comparison.compare_observables(spins, T)
        rows.append(
            {"family": "exact samples", "kl_exact": 0.0, "JSD": floor["jsd"],
             "KL(q||p)": floor["kl_samples_exact"],
             "test_ll": float(log_p[comparison.state_index(spins_test)].mean()),
             **{c: observed[k]["z"] for k, c in zip(ising.OBSERVABLE_KEYS, short, strict=True)}}
        )  # fmt: skip
        print(f"\nT = {T:.4f}, {N_TRAIN} exact training configurations, budget x{args.budget}")
        print(comparison.format_table(rows, COLUMNS))


if __name__ == "__main__":
    main()

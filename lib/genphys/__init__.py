"""genphys: the library behind *Generative Models for the Physical Sciences*.

Where each idea of the book lives (one idea per module):

* :mod:`genphys.enumeration` -- binary states and stable exact sums (chapter 2);
* :mod:`genphys.rbm` -- the Bernoulli RBM: energy, free energy, conditionals, exact
  log Z, likelihood and its gradient in two phases (chapters 2-4);
* :mod:`genphys.mcmc` -- Metropolis-Hastings, Gibbs sampling of RBMs, autocorrelation
  and effective sample size (chapter 5);
* :mod:`genphys.ising` -- the 2D Ising model: energy, Metropolis and Wolff samplers,
  exact enumeration, Onsager's results (chapters 5 and 7);
* :mod:`genphys.training` -- RBM training: positive minus negative phase (CD-k, PCD-k or
  exact), exact expected CD updates (chapters 4 and 6);
* :mod:`genphys.ais` -- annealed importance sampling of log Z (chapter 6);
* :mod:`genphys.data` -- binarised digits and Ising data sets, generated or bundled (all);
* :mod:`genphys.thermodynamics` -- RBMs trained on Ising configurations (chapter 7);
* :mod:`genphys.dbn` -- deep belief networks: greedy stacking, the variational bound, wake-sleep (chapter 8);
* :mod:`genphys.dbm` -- deep Boltzmann machines: exact sums, mean field, PCD training (chapter 8);
* :mod:`genphys.pseudolikelihood`, :mod:`genphys.score_matching`, :mod:`genphys.nce` -- training
  without sampling: pseudo-likelihood, score matching, noise-contrastive estimation (chapter 9);
* :mod:`genphys.gaussian_rbm` -- the Gaussian-Bernoulli RBM with exact log Z (chapter 9);
* :mod:`genphys.langevin`, :mod:`genphys.ebm` -- ULA/MALA samplers; continuous energy models (chapter 10);
* :mod:`genphys.autoencoder` -- autoencoders and reconstruction losses (chapter 11);
* :mod:`genphys.pca` -- principal components and principal angles (chapter 11);
* :mod:`genphys.regularized_autoencoder` -- sparse and denoising autoencoders, the denoiser's score (chapter 11);
* :mod:`genphys.gaussian` -- Gaussian KL, log-densities and log-mean-exp (chapters 12-13);
* :mod:`genphys.linear_gaussian` -- the exact linear-Gaussian latent model (chapters 12-13);
* :mod:`genphys.vae` -- VAEs, the ELBO, IWAE and their training (chapters 12-13);
* :mod:`genphys.criticality` -- Binder cumulant, crossings, bootstrap: T_c by finite-size scaling (chapter 13);
* :mod:`genphys.diffusion` -- diffusion models: schedules, forward process, ELBO, noise prediction, training;
  :mod:`genphys.diffusion_samplers` -- DDPM, DDIM and probability-flow samplers (chapters 14-15);
* :mod:`genphys.mixtures` -- Gaussian mixtures: exact density, score, samples, noised marginals;
* :mod:`genphys.grid` -- quadrature on a 1D/2D grid: exact log Z, KL and JSD of continuous densities;
* :mod:`genphys.gan` -- GANs: generator and discriminator, losses from logits, D*, the game's value (chapter 16);
* :mod:`genphys.autoregressive` -- autoregressive networks over Ising spins: exact sampling and log q,
  the variational free energy and its score-function gradient, importance weights, learned
  Metropolis-Hastings proposals (chapter 17);
* :mod:`genphys.comparison` -- every family against exact answers: observables with errors, divergence floors (chapter 18);
* :mod:`genphys.seeding` -- the one seeding rule: an explicit ``seed`` or ``generator``;
* :mod:`genphys.fitting` -- the one training loop: history, progress bar, divergence stop;
* :mod:`genphys.optim` -- torch.optim's SGD and Adam updates without the Optimizer class;
* :mod:`genphys.threads` -- how many CPU threads torch uses, decided once on import (quota,
  affinity, ``GENPHYS_NUM_THREADS``);
* :mod:`genphys.plotting` -- schematics of every model, figures only, no maths (all chapters);
* :mod:`genphys.exercises` -- solutions and checkers behind the exercises.

Submodules are imported on first use, so ``import genphys`` stays fast. Importing the
package sets torch's number of CPU threads once (:func:`genphys.threads.configure_threads`).
"""

from __future__ import annotations

import importlib
import pkgutil

from ._display import glue, show_source
from .rbm import BernoulliRBM
from .threads import configure_threads as _configure_threads

__all__ = ["BernoulliRBM", "glue", "show_source"]
__version__ = "0.1.0"

# Every chapter, exercise page, project and check imports genphys: the CPU threads are chosen
# here, once (the quota, the affinity mask or GENPHYS_NUM_THREADS; see genphys.threads).
_configure_threads()

# Derived from the files of the package, so the list can never advertise a missing module.
_SUBMODULES = frozenset(
    info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'genphys' has no attribute {name!r}")

"""genphys: the library behind *Generative Models for the Physical Sciences*.

Where each idea of the book lives (one idea per module):

* :mod:`genphys.enumeration` -- binary states and stable exact sums (chapter 2);
* :mod:`genphys.rbm` -- the Bernoulli RBM: energy, free energy, conditionals, exact
  log Z, likelihood and gradient (chapters 2-4);
* :mod:`genphys.exercises` -- the checkers behind the exercises.

Submodules are imported on first use, so ``import genphys`` stays fast.
"""

from __future__ import annotations

import importlib

from ._display import show_source
from .rbm import BernoulliRBM

__all__ = ["BernoulliRBM", "show_source"]
__version__ = "0.1.0"

_SUBMODULES = {
    "ais",
    "autoencoder",
    "data",
    "enumeration",
    "exercises",
    "ising",
    "mcmc",
    "plotting",
    "rbm",
    "training",
    "vae",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'genphys' has no attribute {name!r}")

"""The one seeding rule of the library: an explicit ``seed`` or ``generator``, never the global RNG.

Every public function that draws random numbers takes ``seed`` and ``generator`` keyword
arguments and turns them into a ``torch.Generator`` with :func:`make_generator`, the way
scikit-learn turns every ``random_state`` into a generator with one function:

* ``seed=<int >= 0>`` -- a fresh generator, seeded; the same seed gives the same numbers;
* ``generator=<torch.Generator>`` -- that generator, advanced in place, so that a caller
  can thread one stream through several calls;
* both or neither -- an error: there is exactly one source of randomness per call, and the
  global torch RNG (``torch.manual_seed``) is never read nor changed.

Functions that only shuffle with NumPy (:func:`genphys.data.digits_split`) take ``seed``
alone, and :func:`genphys.data.ising_dataset` passes its ``seed`` on to
:func:`genphys.ising.sample`. Model constructors (``VAE``, ``Autoencoder``,
``initialize_rbm``) draw their initial weights on the CPU with a CPU generator and then move
them, so the same seed gives the same model on every device. Trainers make their generator
once and thread it through shuffling (:func:`genphys.fitting.minibatches`), sampling and
monitoring, so ``seed=s`` and ``generator=torch.Generator().manual_seed(s)`` give the same run.
"""

from __future__ import annotations

import torch

from ._validation import check_generator, check_seed

__all__ = ["make_generator"]


def make_generator(
    seed: int | None = None,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str = "cpu",
) -> torch.Generator:
    """Return the generator a random function uses: ``generator`` or a new one from ``seed``.

    Parameters
    ----------
    seed : int in [0, 2**64 - 1], optional
        Seeds a new ``torch.Generator`` on ``device``.
    generator : torch.Generator, optional
        Used as it is (and advanced); it must live on ``device``.
    device : torch.device or str
        Where the random numbers are drawn (the device of the model or data).

    Returns
    -------
    torch.Generator

    Raises
    ------
    TypeError
        When neither is given, or when ``seed`` is not an integer.
    ValueError
        When both are given, ``seed`` is negative or above ``2**64 - 1``, or ``generator`` lives on another device.

    Examples
    --------
    >>> g = make_generator(seed=0)
    >>> torch.rand(2, generator=g).shape
    torch.Size([2])
    """
    device = torch.device(device)
    if generator is not None:
        if seed is not None:
            raise ValueError(
                "seed must be None when a generator is given (one source of randomness). "
                f"Got seed={seed!r} and a generator instead."
            )
        return check_generator(generator, device, "the model")
    if seed is None:
        raise TypeError(
            "seed must be an integer >= 0 (or pass generator=torch.Generator). "
            "Got neither a seed nor a generator instead."
        )
    seed = check_seed(seed)
    new = torch.Generator(device=device)
    new.manual_seed(seed)
    return new
